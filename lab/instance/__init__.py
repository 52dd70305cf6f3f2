"""Instance service of one DC: `python -m lab.instance --dc dc1` (started by `lab up` inside the DC netns).

Serves the REST management API (HTTPS :9714, paths as Teracloud 7.2) and the data exchange service
(HTTPS :9715), both with HTTP Basic auth, and launches/supervises the PEs of submitted jobs as child
processes (`python -m lab.pe`). Standard library only.

Modules, each importing only those listed before it:
- `model`: jobs, PEs and the API errors (the leaf every other module builds on);
- `responses`: the HTTP response, JSON and collection helpers both APIs share;
- `supervisor`: the `Instance`: jobs, PE launch/supervision/liveness, instance stop/start;
- `hoststats`: resource metrics of the DC host and of PE processes, from /proc;
- `resources`: the REST resource documents (URLs, documents, metric lists);
- `rest`: the REST management API (routing, job submission, actions);
- `openapi`: the OpenAPI document of a job's data exchange endpoints;
- `data`: the data exchange API;
- `server`: the HTTPS servers (TLS, Basic auth) and `main`; `__main__` runs it.
"""
