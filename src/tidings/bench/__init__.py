"""The Tidings benchmark harness (``tidings bench``; DESIGN §6).

A real server process pinned to core 0 and one client process pinned to
core 1 talk over loopback. Every scenario runs against Tidings and, in the
same run, against :mod:`tidings.bench.baseline_app` (Starlette + sse-starlette,
one ``asyncio.Queue`` per client), with the same client.

Modules:

* :mod:`tidings.bench.run` - the entry point: scenarios, servers, report.
* :mod:`tidings.bench.servers` - start, provision and stop the two servers.
* :mod:`tidings.bench.postgres` - ``--database``: PostgreSQL, a fresh database per run.
* :mod:`tidings.bench.baseline_app` - the baseline a team would write instead.
* :mod:`tidings.bench.client` - the client process (``python -m tidings.bench.client``).
* :mod:`tidings.bench.scenarios` - the client-side workloads (s1, s2, s3, publish, memory,
  scale).
* :mod:`tidings.bench.sse_client` - raw asyncio SSE subscribers (httptools, orjson).
* :mod:`tidings.bench.http_client` - raw keep-alive HTTP/1.1 publishers.
* :mod:`tidings.bench.stats` - percentiles and process accounting.
* :mod:`tidings.bench.report` - targets, ratios, the table and the JSON.
"""
