"""The ``tidings`` command line (Typer): ``commands`` holds the root
commands and the shared options, ``automation`` adds rules, jobs, replay
and worker, ``settings_flags`` a ``serve`` flag per setting; ``tail`` and
``demo`` are the two interactive programs; ``main`` puts them together.
(This package imports nothing, so its modules form no import cycle.)"""
