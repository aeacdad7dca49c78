"""The Tidings benchmark harness (``tidings bench``; DESIGN §6).

A real server process pinned to core 0 and one client process pinned to
core 1 talk over loopback. Every scenario runs against Tidings and, in the
same run, against :mod:`benchmarks.baseline_app` (Starlette + sse-starlette,
one ``asyncio.Queue`` per client), with the same client.

Modules:

* :mod:`benchmarks.run` - the entry point: scenarios, servers, report.
* :mod:`benchmarks.servers` - start, provision and stop the two servers.
* :mod:`benchmarks.postgres` - ``--database``: PostgreSQL, a fresh database per run.
* :mod:`benchmarks.baseline_app` - the baseline a team would write instead.
* :mod:`benchmarks.client` - the client process (``python -m benchmarks.client``).
* :mod:`benchmarks.scenarios` - the client-side workloads (s1, s2, s3, publish, memory,
  scale).
* :mod:`benchmarks.sse_client` - raw asyncio SSE subscribers (httptools, orjson).
* :mod:`benchmarks.http_client` - raw keep-alive HTTP/1.1 publishers.
* :mod:`benchmarks.stats` - percentiles and process accounting.
* :mod:`benchmarks.report` - targets, ratios, the table and the JSON.
"""
