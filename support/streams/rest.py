"""Client of the Streams REST management API (Teracloud Streams 7.2 and the embedded lab).

Only the resources root URL is configured; everything else is found by following the URL-valued links
that elements carry (``instances`` from the root, ``jobs``/``pes``/``operators`` from the instance,
``pes``/``operators`` from a job, ``metrics``/``inputPorts``/``applicationTrace`` from elements).
The one URL pattern built by hand is ``<collection>/<restid>`` for an element of a collection.

One client = one data center = one long-lived session. Thread-safe for concurrent calls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from requests.adapters import BaseAdapter

from support.config.settings import AuthSettings, HttpSettings
from support.streams.errors import StreamsApiError, StreamsError, StreamsNotFound, safe_url
from support.streams.http import (
    POOL_SIZE,
    HomeSession,
    Timeout,
    default_http_settings,
    json_body,
    make_session,
    request,
)

if TYPE_CHECKING:
    from requests.auth import AuthBase

    from support.config.settings import Settings

__all__ = ["ENDED_JOB_STATUSES", "StreamsRestClient", "is_app_job"]

log = logging.getLogger(__name__)

#: Job states of a job that is gone or going.
ENDED_JOB_STATUSES = frozenset({"canceled", "canceling"})
_MAX_PAGES = 1000

JobRef = Mapping[str, Any] | str | int


class StreamsRestClient:
    """REST management client of one Streams instance.

    ``root_url`` is the resources root (``https://host:9714/streams/resources``); ``instance_id`` the
    instance to use (``None``: the only one listed).
    """

    def __init__(
        self,
        root_url: str,
        *,
        auth: AuthBase | AuthSettings | Mapping[str, Any] | None = None,
        ca_bundle: str | None = None,
        instance_id: str | None = None,
        settings: HttpSettings | None = None,
        adapter: BaseAdapter | None = None,
        name: str = "",
    ) -> None:
        self.root_url = root_url
        self.instance_id = instance_id
        self.settings = settings or default_http_settings()
        self.name = name or safe_url(root_url)
        self.session: HomeSession = make_session(
            auth, ca_bundle, self.settings.retries, self.settings.backoff, POOL_SIZE, adapter, home=root_url
        )
        self._instance: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, dc: str, adapter: BaseAdapter | None = None) -> StreamsRestClient:
        """The client of data center ``dc`` (``datacenters.<dc>.rest`` and the ``http`` section)."""
        rest = settings.datacenters[dc].rest
        return cls(
            rest.url,
            auth=rest.auth,
            ca_bundle=rest.ca_bundle,
            instance_id=rest.instance,
            settings=settings.http,
            adapter=adapter,
            name=dc,
        )

    def __repr__(self) -> str:
        return f"StreamsRestClient({self.name!r}, {safe_url(self.root_url)!r})"

    def __enter__(self) -> StreamsRestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------------------- plumbing

    def _request(self, method: str, url: str, *, timeout: Timeout | None = None, **kwargs: Any) -> Any:
        return request(self.session, method, url, timeout=timeout or self.settings.timeout, **kwargs)

    def get(self, url: str, **params: Any) -> Any:
        """GET ``url`` (query ``params``; ``None`` values dropped) and return its JSON document."""
        query = {key: value for key, value in params.items() if value is not None}
        response = self._request("GET", url, params=query or None, expected=(200,))
        return json_body(response)

    def _collection(self, url: str, list_key: str, **params: Any) -> list[dict[str, Any]]:
        """All elements of a collection, following ``next`` links when the server pages."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        query: dict[str, Any] = params
        for _ in range(_MAX_PAGES):
            if not next_url:
                return items
            document = self.get(next_url, **query)
            if not isinstance(document, Mapping) or not isinstance(document.get(list_key), list):
                raise StreamsApiError(
                    f"GET {safe_url(next_url)}: expected a collection with a {list_key!r} list",
                    url=next_url,
                    method="GET",
                )
            items.extend(item for item in document[list_key] if isinstance(item, dict))
            following = document.get("next")
            next_url = following if isinstance(following, str) and following != next_url else None
            query = {}  # the next link carries the query
        raise StreamsApiError(f"GET {safe_url(url)}: more than {_MAX_PAGES} pages", url=url, method="GET")

    @staticmethod
    def _link(element: Mapping[str, Any], name: str) -> str:
        value = element.get(name)
        if not isinstance(value, str) or not value:
            kind = element.get("resourceType", "element")
            ident = element.get("id") or element.get("name") or element.get("self") or "?"
            raise StreamsApiError(f"{kind} {ident} has no {name!r} link", url=element.get("self"))
        return value

    @staticmethod
    def _child(collection_url: str, restid: str | int) -> str:
        return f"{collection_url.rstrip('/')}/{quote(str(restid), safe='')}"

    # ------------------------------------------------------------------------------- navigation

    def resources(self) -> dict[str, Any]:
        """The resources root: ``{"resources": [{"name": "instances", "resource": url}, ...]}``."""
        document = self.get(self.root_url)
        if not isinstance(document, dict):
            raise StreamsApiError(f"GET {safe_url(self.root_url)}: expected a JSON object", url=self.root_url)
        return document

    def instance(self, refresh: bool = False) -> dict[str, Any]:
        """The configured instance element (cached; ``refresh=True`` reads it again)."""
        with self._lock:
            if self._instance is not None and not refresh:
                return self._instance
        listing = self.resources().get("resources", [])
        urls = [r.get("resource") for r in listing if isinstance(r, Mapping) and r.get("name") == "instances"]
        if not urls or not isinstance(urls[0], str):
            names = ", ".join(str(r.get("name")) for r in listing if isinstance(r, Mapping)) or "none"
            raise StreamsNotFound(
                f"{safe_url(self.root_url)} lists no 'instances' resource (resources: {names})",
                url=self.root_url,
            )
        instances = self._collection(urls[0], "instances")
        chosen = self._choose_instance(instances, urls[0])
        if not isinstance(chosen.get("jobs"), str) and isinstance(chosen.get("self"), str):
            chosen = self.get(chosen["self"])  # a summary in the list: read the element itself
        with self._lock:
            self._instance = chosen
        return chosen

    def _choose_instance(self, instances: list[dict[str, Any]], url: str) -> dict[str, Any]:
        ids = [str(i.get("id", i.get("restid", "?"))) for i in instances]
        if self.instance_id is not None:
            for element in instances:
                if self.instance_id in (element.get("id"), element.get("restid")):
                    return element
            raise StreamsNotFound(
                f"instance {self.instance_id!r} not found at {safe_url(url)} (instances: {', '.join(ids) or 'none'})",
                url=url,
            )
        if len(instances) == 1:
            return instances[0]
        raise StreamsError(
            f"{safe_url(url)} lists {len(instances)} instances ({', '.join(ids) or 'none'}); "
            f"configure datacenters.{self.name}.rest.instance",
            url=url,
        )

    # ------------------------------------------------------------------------------------- jobs

    def _jobs_url(self) -> str:
        return self._link(self.instance(), "jobs")

    def jobs(self, name: str | None = None) -> list[dict[str, Any]]:
        """Jobs of the instance, optionally only those named ``name``."""
        jobs = self._collection(self._jobs_url(), "jobs", name=name)
        return [job for job in jobs if name is None or job.get("name") == name]

    def job(self, job_id: str | int) -> dict[str, Any]:
        """One job by id (``StreamsNotFound`` when it does not exist)."""
        document = self.get(self._child(self._jobs_url(), job_id))
        if not isinstance(document, dict):
            raise StreamsApiError(f"job {job_id}: expected a JSON object")
        return document

    def find_job(self, name: str) -> dict[str, Any] | None:
        """The newest job named ``name`` that is not canceled or canceling, or None."""
        live = [job for job in self.jobs(name) if job.get("status") not in ENDED_JOB_STATUSES]
        if not live:
            return None
        return max(live, key=lambda job: (_as_int(job.get("id")), str(job.get("id"))))

    def app_jobs(self, job_name: str, main_composite: str | None = None) -> list[dict[str, Any]]:
        """The jobs of an application: named ``job_name``, or (with ``main_composite``) of that ``applicationName``,
        as a job that a failover script submitted without a name is (the instance names it ``<main>_<id>``)."""
        if main_composite is None:
            return self.jobs(job_name)
        return [job for job in self.jobs() if is_app_job(job, job_name, main_composite)]

    def find_app_job(self, job_name: str, main_composite: str | None = None) -> dict[str, Any] | None:
        """The newest live job of an application (see :meth:`app_jobs`), or None."""
        live = [job for job in self.app_jobs(job_name, main_composite) if job.get("status") not in ENDED_JOB_STATUSES]
        if not live:
            return None
        return max(live, key=lambda job: (_as_int(job.get("id")), str(job.get("id"))))

    def _job_element(self, job: JobRef) -> Mapping[str, Any]:
        return job if isinstance(job, Mapping) else self.job(job)

    def upload_bundle(self, path: str | Path) -> str:
        """Upload an application bundle (``.sab``) to the instance's ``applicationbundles``; return its bundle id.

        What ``streamtool submitjob x.sab`` does first: ``POST {instance}/applicationbundles`` with
        ``Content-Type: application/x-jar`` and the raw file (reference §2)."""
        instance = self.instance()
        url = (instance["applicationBundles"] if isinstance(instance.get("applicationBundles"), str)
               else f"{self._link(instance, 'self').rstrip('/')}/applicationbundles")
        data = Path(path).read_bytes()
        response = self._request("POST", url, data=data, headers={"Content-Type": "application/x-jar"},
                                 expected=(200, 201))
        document = json_body(response)
        bundle_id = document.get("bundleId") if isinstance(document, Mapping) else None
        if not isinstance(bundle_id, str | int) or isinstance(bundle_id, bool):
            raise StreamsApiError(f"POST {safe_url(url)}: the answer names no bundleId", url=url, method="POST")
        log.info("%s: uploaded %s as bundle %s", self.name, Path(path).name, bundle_id)
        return str(bundle_id)

    def submit_bundle(self, bundle: str, job_name: str | None = None,
                      submission_parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Submit a configured bundle: an https URL of a ``.sab`` is passed as is; a ``.sab`` file on this machine
        is uploaded first (as ``streamtool submitjob`` does), then submitted by its bundle id."""
        application = bundle
        if not bundle.startswith("https://"):
            if not Path(bundle).is_file():
                raise StreamsError(f"{self.name}: application bundle {bundle} is not a file on this machine (give a "
                                   ".sab file or an https URL of one)")
            application = self.upload_bundle(bundle)
        return self.submit_job(application, job_name=job_name, submission_parameters=submission_parameters)

    def submit_job(
        self,
        application: str,
        job_name: str | None = None,
        submission_parameters: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Submit ``application`` (a bundle id from :meth:`upload_bundle` or an https URL of a ``.sab``); return
        the new job (HTTP 201)."""
        job_config: dict[str, Any] = {}
        if job_name:
            job_config["jobName"] = job_name
        if submission_parameters:
            job_config["submissionParameters"] = [
                {"name": str(key), "value": str(value)} for key, value in submission_parameters.items()
            ]
        body: dict[str, Any] = {"application": application}
        if job_config:
            body["jobConfigurationOverlay"] = {"jobConfigOverlays": [{"jobConfig": job_config}]}
        response = self._request("POST", self._jobs_url(), json=body, expected=(201,))
        if not response.content.strip() and response.headers.get("Location"):
            return self.get(response.headers["Location"])  # older servers answer with a Location only
        document = json_body(response)
        if not isinstance(document, dict) or "id" not in document:
            raise StreamsApiError(f"POST {safe_url(self._jobs_url())}: the answer is not a job", method="POST")
        log.info("%s: submitted %s as job %s (%s)", self.name, application, document["id"], document.get("name"))
        return document

    def cancel_job(self, job: JobRef) -> None:
        """Cancel a job (element or id): DELETE, 204. ``StreamsNotFound`` when it does not exist."""
        if isinstance(job, Mapping) and isinstance(job.get("self"), str):
            url = job["self"]
        else:
            job_id = job.get("id") if isinstance(job, Mapping) else job
            if job_id is None:
                raise ValueError("cancel_job needs a job element or id")
            url = self._child(self._jobs_url(), job_id)
        self._request("DELETE", url, expected=(200, 202, 204))
        log.info("%s: canceled job at %s", self.name, safe_url(url))

    def job_gone(self, job_id: str | int) -> bool:
        """True once a canceled job is no longer listed (a real DELETE answers while the job is ``canceling``)."""
        try:
            status = self.job(job_id).get("status")
        except StreamsNotFound:
            return True
        return status == "canceled"

    # ------------------------------------------------------------------ application configurations

    def _app_configs_url(self) -> str:
        return self._link(self.instance(), "applicationConfigurations")

    def app_config(self, name: str) -> dict[str, Any] | None:
        """The application configuration ``name`` (with its ``properties``), or None when there is none."""
        for element in self._collection(self._app_configs_url(), "applicationConfigurations"):
            if element.get("name") == name:
                if "properties" not in element and isinstance(element.get("self"), str):
                    document = self.get(element["self"])
                    return document if isinstance(document, dict) else None
                return element
        return None

    def put_app_config(self, name: str, properties: Mapping[str, str], description: str = "") -> None:
        """Create the application configuration ``name``, or replace its properties (PATCH its ``self``)."""
        existing = self.app_config(name)
        body = {"name": name, "description": description,
                "properties": {str(k): str(v) for k, v in properties.items()}}
        if existing is None:
            self._request("POST", self._app_configs_url(), json=body, expected=(200, 201))
        else:
            self._request("PATCH", self._link(existing, "self"), json=body, expected=(200, 204))

    def delete_app_config(self, name: str) -> None:
        """Delete the application configuration ``name`` (nothing when there is none)."""
        existing = self.app_config(name)
        if existing is not None:
            try:
                self._request("DELETE", self._link(existing, "self"), expected=(200, 204))
            except StreamsNotFound:
                return

    # --------------------------------------------------------------------- PEs, operators, metrics

    def pes(self, job: JobRef) -> list[dict[str, Any]]:
        """The processing elements of a job (element or id)."""
        return self._collection(self._link(self._job_element(job), "pes"), "pes")

    def operators(self, job: JobRef) -> list[dict[str, Any]]:
        """The operators of a job (element or id)."""
        return self._collection(self._link(self._job_element(job), "operators"), "operators")

    def operator(self, job: JobRef, name: str) -> dict[str, Any]:
        """The operator named ``name`` in a job: exact ``name``, else ``logicalName``, else last segment."""
        operators = self.operators(job)
        for matches in (
            [op for op in operators if op.get("name") == name],
            [op for op in operators if op.get("logicalName") == name],
            [op for op in operators if str(op.get("name", "")).rsplit(".", 1)[-1] == name],
        ):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                names = ", ".join(str(op.get("name")) for op in matches)
                raise StreamsError(f"operator name {name!r} is ambiguous: {names}")
        known = ", ".join(str(op.get("name")) for op in operators) or "none"
        raise StreamsNotFound(f"no operator {name!r} in job {_job_label(job)} (operators: {known})")

    def metrics(self, element_or_url: Mapping[str, Any] | str) -> dict[str, int]:
        """Metric name -> value of an element (follows its ``metrics`` link) or of a metrics URL."""
        url = element_or_url if isinstance(element_or_url, str) else self._link(element_or_url, "metrics")
        values: dict[str, int] = {}
        for metric in self._collection(url, "metrics"):
            name, value = metric.get("name"), metric.get("value")
            if isinstance(name, str) and isinstance(value, int | float) and not isinstance(value, bool):
                values[name] = int(value)
        return values

    def port_metrics(
        self,
        job: JobRef,
        operator_name: str,
        direction: Literal["input", "output"],
        index: int = 0,
    ) -> dict[str, int]:
        """Metrics of input or output port ``index`` of an operator.

        Follows the operator's ``inputPorts``/``outputPorts`` link when it has one, else reads
        ``<operator>/inputports/<index>/metrics``.
        """
        if direction not in ("input", "output"):
            raise ValueError(f"direction must be 'input' or 'output', not {direction!r}")
        operator = self.operator(job, operator_name)
        list_key = "inputPorts" if direction == "input" else "outputPorts"
        ports_url = operator.get(list_key)
        if isinstance(ports_url, str) and ports_url:
            ports = self._collection(ports_url, list_key)
            port = next((p for p in ports if p.get("indexWithinOperator") == index), None)
            if port is None and all("indexWithinOperator" not in p for p in ports) and index < len(ports):
                port = ports[index]
            if port is None:
                raise StreamsNotFound(f"operator {operator_name!r} has no {direction} port {index}", url=ports_url)
            if isinstance(port.get("metrics"), str):
                return self.metrics(port["metrics"])
            return self.metrics(f"{self._link(port, 'self').rstrip('/')}/metrics")
        base = self._link(operator, "self").rstrip("/")
        return self.metrics(f"{base}/{direction}ports/{index}/metrics")

    def pe_trace(self, pe: Mapping[str, Any]) -> str:
        """The application trace text of a PE (its ``applicationTrace`` link)."""
        url = self._link(pe, "applicationTrace")
        response = self._request("GET", url, headers={"Accept": "text/plain, */*"}, expected=(200,))
        return response.text


def is_app_job(job: Mapping[str, Any], job_name: str, main_composite: str | None = None) -> bool:
    """Whether ``job`` (a REST job element or a data exchange listing entry) belongs to the application named
    ``job_name`` whose main composite is ``main_composite``."""
    name = job.get("name", job.get("jobName"))
    return name == job_name or (main_composite is not None and job.get("applicationName") == main_composite)


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _job_label(job: JobRef) -> str:
    if isinstance(job, Mapping):
        return str(job.get("name") or job.get("id") or "?")
    return str(job)
