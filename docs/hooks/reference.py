"""MkDocs hook: add the reference pages generated from the code.

``mkdocs.yml`` lists this file under ``hooks:``; MkDocs puts this folder on
``sys.path`` while loading it, so ``tidings_reference`` (beside this file)
imports. The pages exist only in the build: nothing is written to ``docs/``.
"""

from __future__ import annotations

from typing import Any

from mkdocs.structure.files import File, Files
from tidings_reference import pages


def on_files(files: Files, config: Any) -> Files:
    for path, markdown in pages().items():
        files.append(File.generated(config, path, content=markdown))
    return files
