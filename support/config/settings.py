"""Frozen, typed settings built once from a validated configuration.

:func:`build_settings` takes the resolved document *after* schema validation with the schema defaults
filled in (see :mod:`support.config.loader`), so every default lives in ``config/schema.json`` only. The
builders here never invent a value: an optional key the schema gives no default is ``None``, and the two
documented derivations (``faults.ttl`` = ``run.scenario_timeout`` when unset; a data center's exchange
auth and CA bundle = its rest ones when unset) are spelled out where they happen.

Durations are float seconds, sizes int bytes. Secret values (passwords, tokens, passphrases) are kept on
the objects, for the clients that need them, but never appear in their ``repr``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from support.config.gates import Gate, GateError, parse_gates
from support.data.contract import ORDERS, ContractError, DataContract, parse_contract
from support.units import parse_duration, parse_size

__all__ = [
    "AppSettings",
    "AuthSettings",
    "BastionSettings",
    "CrossDcSettings",
    "DataCenterSettings",
    "EndpointSettings",
    "ExchangeSettings",
    "FaultsSettings",
    "HttpSettings",
    "JmxSettings",
    "MetricsSettings",
    "NotifySettings",
    "Objectives",
    "PrometheusSettings",
    "RestSettings",
    "RunSettings",
    "Settings",
    "SettingsError",
    "SshSettings",
    "StandbySettings",
    "TrafficSettings",
    "WebhookSettings",
    "build_http_settings",
    "build_settings",
]


class SettingsError(ValueError):
    """A value that passed the schema but cannot be used (``path`` is the dotted key)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True, slots=True)
class StopCondition:
    """One of ``run.stop_conditions``: a PromQL expression (breached when it returns a sample whose value is
    neither 0 nor NaN) or the REST health of a data center (breached when its instance, or the application's
    job there, is not healthy). ``label`` names it in messages: its ``name``, else what it checks."""

    name: str | None
    promql: str | None = None
    rest_dc: str | None = None
    rest_application: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.promql is not None:
            return f"promql {self.promql}"
        job = f" and its {self.rest_application} job" if self.rest_application else ""
        return f"REST health of {self.rest_dc}{job}"


@dataclass(frozen=True, slots=True)
class RunSettings:
    reports_dir: str
    scenario_timeout: float
    log_level: str
    stop_conditions: tuple[StopCondition, ...] = ()


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Timeouts and retries of the REST and data exchange clients (``http``)."""

    connect_timeout: float
    read_timeout: float
    retries: int
    backoff: float

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``{type: basic, username, password}`` or ``{type: bearer, token}``; secrets hidden from repr."""

    type: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RestSettings:
    url: str
    instance: str | None
    auth: AuthSettings
    ca_bundle: str | None


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """The data exchange service; ``auth``/``ca_bundle`` already fall back to the rest ones."""

    url: str
    auth: AuthSettings
    ca_bundle: str | None


@dataclass(frozen=True, slots=True)
class BastionSettings:
    """``datacenters.<dc>.ssh.bastion``: the jump host every SSH connection of the DC goes through (ProxyJump);
    ``user``, ``key_file`` and ``key_passphrase`` already fall back to the DC's ssh ones."""

    host: str
    port: int
    user: str
    key_file: str
    key_passphrase: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SshSettings:
    user: str
    key_file: str
    known_hosts: str
    port: int
    key_passphrase: str | None = field(default=None, repr=False)
    #: the command prefix every fault script runs under (e.g. ``("sudo", "-n")``); empty: as the login user
    sudo: tuple[str, ...] = ()
    bastion: BastionSettings | None = None


@dataclass(frozen=True, slots=True)
class JmxSettings:
    """``datacenters.<dc>.jmx``; username, password and ca_bundle already fall back to the rest ones."""

    url: str
    instance: str | None
    username: str | None
    password: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    classpath: tuple[str, ...] = ()
    tls_protocols: str | None = None


@dataclass(frozen=True, slots=True)
class CrossDcSettings:
    http_port: int
    special_message_port: int | None  # None: looked up in the instance's name service
    snapshot_dir: str | None
    config_files: Mapping[str, str] = field(default_factory=dict)  # role (application, standby) -> path
    streamtool: str = "streamtool"


@dataclass(frozen=True, slots=True)
class DataCenterSettings:
    name: str
    rest: RestSettings
    exchange: ExchangeSettings
    hosts: tuple[str, ...]
    ssh: SshSettings | None
    jmx: JmxSettings | None
    crossdc: CrossDcSettings


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    operator: str
    port: int


@dataclass(frozen=True, slots=True)
class StandbySettings:
    """The standalone passive stub: a command run on the standby data center's first host."""

    command: str
    log_file: str | None


@dataclass(frozen=True, slots=True)
class ToolkitSettings:
    """How an application embeds the Cross-DC toolkit."""

    alias: str = "CrossDCFailover"
    settings_via: str = "config-file"
    trace_up: str = "Received a notification about the remote data center coming up"
    trace_down: str = "Received a notification about the remote data center going down"


@dataclass(frozen=True, slots=True)
class AppSettings:
    name: str
    job_name: str
    bundle: str
    standby: StandbySettings | None
    source: EndpointSettings
    sink: EndpointSettings
    submission_parameters: Mapping[str, str]
    crossdc: ToolkitSettings = ToolkitSettings()
    main_composite: str | None = None
    data: DataContract = ORDERS  # what the tester sends and needs back (docs/application-contract.md)


@dataclass(frozen=True, slots=True)
class TrafficSettings:
    seed: int
    batch_interval: float
    consumer_interval: float
    sink_overlap: float
    policy: str
    drain_timeout: float
    drain_quiet: float
    input_file: str | None


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """``metrics.prometheus``; ``connect_timeout``/``read_timeout`` already fall back to the ``http`` ones."""

    url: str
    instance_label: str
    dc_label: str
    auth: AuthSettings | None = None
    ca_bundle: str | None = None
    connect_timeout: float = 3.0
    read_timeout: float = 15.0

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    prometheus: PrometheusSettings | None
    interval: float
    sources: tuple[str, ...]
    throughput_window: float
    throughput_fraction: float
    split_brain_gap: float
    clock_tolerance: float
    settle_period: float


@dataclass(frozen=True, slots=True)
class FaultsSettings:
    """``faults.*``; ``ttl`` is ``run.scenario_timeout`` when the file sets none."""

    ttl: float
    tag: str
    state_dir: str | None
    dry_run: bool
    verify_timeout: float
    ssh_retries: int
    ssh_timeout: float
    python: str
    memory_max: int
    disk_max: int
    #: ``faults.client_address``: where the DCs see the tester's traffic come from (clients-cut); None = from SSH
    client_address: str | None = None

    @property
    def directory(self) -> str:
        """Where faults keep their files on a host (``faults.state_dir``, else ``/run/<tag>``)."""
        return self.state_dir or f"/run/{self.tag}"


@dataclass(frozen=True, slots=True)
class Objectives:
    """Recovery objectives of one application; an objective the file does not set is ``None``."""

    rto: float | None
    max_lost: int | None
    loss_window: float | None
    takeover: float | None
    max_duplicated: int | None
    state_loss_window: float | None
    rpo: float | None
    throughput_recovery: float | None
    throughput_fraction: float | None

    def as_dict(self) -> dict[str, float | int]:
        """The objectives that are set, by key (the shape the measurement code judges)."""
        return {name: value for name in self.__dataclass_fields__ if (value := getattr(self, name)) is not None}


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``notify.webhook``: where the URL is read (``url_env`` or ``url_file``, exactly one), the message's format,
    the occasions that send it, and how it is sent (:mod:`support.notify`)."""

    url_env: str | None
    url_file: str | None
    format: str
    when: tuple[str, ...]
    timeout: float
    attempts: int
    backoff: float
    report_url: str | None = None


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """``notify``: the announcements of a finished run (none configured: ``webhook`` is None)."""

    webhook: WebhookSettings | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration, typed. Build it with :func:`build_settings` (``Config.settings``)."""

    name: str | None
    run: RunSettings
    http: HttpSettings
    datacenters: Mapping[str, DataCenterSettings]
    applications: Mapping[str, AppSettings]
    traffic: TrafficSettings
    metrics: MetricsSettings
    faults: FaultsSettings
    objectives: Mapping[str, Objectives]
    gates: tuple[Gate, ...] = ()  # objectives on the run's distributions (support/config/gates.py)
    notify: NotifySettings = NotifySettings()

    def dc(self, name: str) -> DataCenterSettings:
        return self.datacenters[name]

    def app(self, name: str) -> AppSettings:
        return self.applications[name]


# ------------------------------------------------------------------------------------------ builders


def _duration(section: Mapping[str, Any], key: str, path: str) -> float:
    try:
        return parse_duration(section[key])
    except ValueError as exc:
        raise SettingsError(f"{path}.{key}", str(exc)) from None


def _optional_duration(section: Mapping[str, Any], key: str, path: str) -> float | None:
    return None if section.get(key) is None else _duration(section, key, path)


def _size(section: Mapping[str, Any], key: str, path: str) -> int:
    try:
        return parse_size(section[key])
    except ValueError as exc:
        raise SettingsError(f"{path}.{key}", str(exc)) from None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _auth(raw: Mapping[str, Any]) -> AuthSettings:
    return AuthSettings(
        type=str(raw["type"]),
        username=_optional_str(raw.get("username")),
        password=_optional_str(raw.get("password")),
        token=_optional_str(raw.get("token")),
    )


def _sudo(value: Any, path: str) -> tuple[str, ...]:
    """``ssh.sudo``: false/absent -> no prefix, true -> ``sudo -n``, a string -> that command prefix."""
    if value is None or value is False:
        return ()
    if value is True:
        return ("sudo", "-n")
    try:
        words = tuple(shlex.split(str(value)))
    except ValueError as exc:
        raise SettingsError(path, f"not a command prefix: {exc}") from None
    if not words:
        raise SettingsError(path, "empty command prefix (use false for none)")
    return words


def _ssh(dc: str, raw: Mapping[str, Any]) -> SshSettings:
    user, key_file = str(raw["user"]), str(raw["key_file"])
    passphrase = _optional_str(raw.get("key_passphrase")) or None
    bastion = None
    if raw.get("bastion"):
        # Documented in the schema: the bastion's user, key and passphrase default to the DC's ssh ones.
        jump = raw["bastion"]
        bastion = BastionSettings(
            host=str(jump["host"]),
            port=int(jump["port"]),
            user=str(jump["user"]) if jump.get("user") else user,
            key_file=str(jump["key_file"]) if jump.get("key_file") else key_file,
            key_passphrase=(_optional_str(jump.get("key_passphrase")) or None) if "key_file" in jump else passphrase,
        )
    return SshSettings(
        user=user,
        key_file=key_file,
        known_hosts=str(raw["known_hosts"]),
        port=int(raw["port"]),
        key_passphrase=passphrase,
        sudo=_sudo(raw.get("sudo"), f"datacenters.{dc}.ssh.sudo"),
        bastion=bastion,
    )


def _datacenter(name: str, raw: Mapping[str, Any]) -> DataCenterSettings:
    rest_raw, exchange_raw = raw["rest"], raw["exchange"]
    rest = RestSettings(
        url=str(rest_raw["url"]),
        instance=_optional_str(rest_raw.get("instance")),
        auth=_auth(rest_raw["auth"]),
        ca_bundle=_optional_str(rest_raw.get("ca_bundle")),
    )
    # Documented in the schema: the exchange's auth and ca_bundle default to the rest ones.
    exchange = ExchangeSettings(
        url=str(exchange_raw["url"]),
        auth=_auth(exchange_raw["auth"]) if "auth" in exchange_raw else rest.auth,
        ca_bundle=_optional_str(exchange_raw["ca_bundle"]) if "ca_bundle" in exchange_raw else rest.ca_bundle,
    )
    ssh_raw = raw.get("ssh")
    ssh = None
    if ssh_raw:
        ssh = _ssh(name, ssh_raw)
    jmx_raw = raw.get("jmx")
    jmx = None
    if jmx_raw:
        # Documented in the schema: credentials and CA bundle default to the rest ones (Streams uses the same user).
        basic = rest.auth if rest.auth.type == "basic" else None
        classpath = jmx_raw.get("classpath") or ()
        username = basic.username if basic else None
        password = basic.password if basic else None
        jmx = JmxSettings(
            url=str(jmx_raw["url"]),
            instance=_optional_str(jmx_raw.get("instance")),
            username=_optional_str(jmx_raw["username"]) if "username" in jmx_raw else username,
            password=_optional_str(jmx_raw["password"]) if "password" in jmx_raw else password,
            ca_bundle=_optional_str(jmx_raw["ca_bundle"]) if "ca_bundle" in jmx_raw else rest.ca_bundle,
            classpath=(str(classpath),) if isinstance(classpath, str) else tuple(str(c) for c in classpath),
            tls_protocols=_optional_str(jmx_raw.get("tls_protocols")),
        )
    crossdc_raw = raw["crossdc"]
    return DataCenterSettings(
        name=name,
        rest=rest,
        exchange=exchange,
        hosts=tuple(str(host) for host in raw.get("hosts") or ()),
        ssh=ssh,
        jmx=jmx,
        crossdc=CrossDcSettings(
            http_port=int(crossdc_raw["http_port"]),
            special_message_port=(None if crossdc_raw.get("special_message_port") is None
                                  else int(crossdc_raw["special_message_port"])),
            snapshot_dir=_optional_str(crossdc_raw.get("snapshot_dir")),
            config_files=MappingProxyType({str(k): str(v) for k, v in crossdc_raw["config_files"].items()}),
            streamtool=str(crossdc_raw["streamtool"]),
        ),
    )


def _endpoint(raw: Mapping[str, Any]) -> EndpointSettings:
    return EndpointSettings(operator=str(raw["operator"]), port=int(raw["port"]))


def _application(name: str, raw: Mapping[str, Any]) -> AppSettings:
    standby_raw = raw.get("standby")
    standby = (StandbySettings(str(standby_raw["command"]), _optional_str(standby_raw.get("log_file")))
               if standby_raw else None)
    toolkit = raw["crossdc"]
    return AppSettings(
        name=name,
        job_name=str(raw["job_name"]),
        bundle=str(raw["bundle"]),
        standby=standby,
        source=_endpoint(raw["source"]),
        sink=_endpoint(raw["sink"]),
        submission_parameters=MappingProxyType(
            {str(k): str(v) for k, v in raw["submission_parameters"].items()}
        ),
        crossdc=ToolkitSettings(
            alias=str(toolkit["alias"]),
            settings_via=str(toolkit["settings_via"]),
            trace_up=str(toolkit["trace_up"]),
            trace_down=str(toolkit["trace_down"]),
        ),
        main_composite=_optional_str(raw.get("main_composite")),
        data=_contract(name, raw.get("data")),
    )


def _contract(name: str, raw: Mapping[str, Any] | None) -> DataContract:
    try:
        return parse_contract(raw)
    except ContractError as exc:
        raise SettingsError(f"applications.{name}.{exc.path}", exc.problem) from None


def _objectives(name: str, raw: Mapping[str, Any]) -> Objectives:
    path = f"objectives.{name}"

    def count(key: str) -> int | None:
        return None if raw.get(key) is None else int(raw[key])

    return Objectives(
        rto=_optional_duration(raw, "rto", path),
        max_lost=count("max_lost"),
        loss_window=_optional_duration(raw, "loss_window", path),
        takeover=_optional_duration(raw, "takeover", path),
        max_duplicated=count("max_duplicated"),
        state_loss_window=_optional_duration(raw, "state_loss_window", path),
        rpo=_optional_duration(raw, "rpo", path),
        throughput_recovery=_optional_duration(raw, "throughput_recovery", path),
        throughput_fraction=None if raw.get("throughput_fraction") is None else float(raw["throughput_fraction"]),
    )


def build_http_settings(http: Mapping[str, Any]) -> HttpSettings:
    """The ``http`` section (defaults filled in) as :class:`HttpSettings`."""
    return HttpSettings(
        connect_timeout=_duration(http, "connect_timeout", "http"),
        read_timeout=_duration(http, "read_timeout", "http"),
        retries=int(http["retries"]),
        backoff=_duration(http, "backoff", "http"),
    )


def _stop_conditions(data: Mapping[str, Any]) -> tuple[StopCondition, ...]:
    """``run.stop_conditions``: the shape is the schema's; the names they use must be declared, and PromQL needs
    ``metrics.prometheus``."""
    out: list[StopCondition] = []
    for index, raw in enumerate(data["run"].get("stop_conditions") or []):
        path = f"run.stop_conditions[{index}]"
        name = _optional_str(raw.get("name"))
        if "promql" in raw:
            if not (data["metrics"].get("prometheus") or {}).get("url"):
                raise SettingsError(f"{path}.promql", "a PromQL stop condition needs metrics.prometheus.url")
            out.append(StopCondition(name, promql=str(raw["promql"])))
            continue
        health = raw["rest_health"]
        dc, app = (health, None) if isinstance(health, str) else (health["dc"], health.get("application"))
        if dc not in data["datacenters"]:
            known = ", ".join(sorted(data["datacenters"]))
            raise SettingsError(f"{path}.rest_health", f'unknown data center "{dc}" (configured: {known})')
        if app is not None and app not in data["applications"]:
            known = ", ".join(sorted(data["applications"]))
            raise SettingsError(f"{path}.rest_health.application", f'unknown application "{app}" (configured: {known})')
        out.append(StopCondition(name, rest_dc=str(dc), rest_application=None if app is None else str(app)))
    return tuple(out)


def build_settings(data: Mapping[str, Any]) -> Settings:
    """Typed settings from a validated document whose schema defaults are filled in.

    Raises :class:`SettingsError` (dotted path + problem) for values the schema lets through but that
    cannot be used; :func:`support.config.loader.load_config` turns it into a ``ConfigError``."""
    run, http, traffic, metrics, faults = (data[key] for key in ("run", "http", "traffic", "metrics", "faults"))
    run_settings = RunSettings(
        reports_dir=str(run["reports_dir"]),
        scenario_timeout=_duration(run, "scenario_timeout", "run"),
        log_level=str(run["log_level"]),
        stop_conditions=_stop_conditions(data),
    )
    prometheus_raw = metrics.get("prometheus")
    prometheus = None
    if prometheus_raw:
        # Documented in the schema: the timeouts default to the http ones.
        http_settings = build_http_settings(http)
        prometheus = PrometheusSettings(
            url=str(prometheus_raw["url"]),
            instance_label=str(prometheus_raw["instance_label"]),
            dc_label=str(prometheus_raw["dc_label"]),
            auth=_auth(prometheus_raw["auth"]) if prometheus_raw.get("auth") else None,
            ca_bundle=_optional_str(prometheus_raw.get("ca_bundle")),
            connect_timeout=(_duration(prometheus_raw, "connect_timeout", "metrics.prometheus")
                             if prometheus_raw.get("connect_timeout") is not None
                             else http_settings.connect_timeout),
            read_timeout=(_duration(prometheus_raw, "read_timeout", "metrics.prometheus")
                          if prometheus_raw.get("read_timeout") is not None else http_settings.read_timeout),
        )
    return Settings(
        name=_optional_str(data.get("name")),
        run=run_settings,
        http=build_http_settings(http),
        datacenters=MappingProxyType({name: _datacenter(name, dc) for name, dc in data["datacenters"].items()}),
        applications=MappingProxyType(
            {name: _application(name, app) for name, app in data["applications"].items()}
        ),
        traffic=TrafficSettings(
            seed=int(traffic["seed"]),
            batch_interval=_duration(traffic, "batch_interval", "traffic"),
            consumer_interval=_duration(traffic, "consumer_interval", "traffic"),
            sink_overlap=_duration(traffic, "sink_overlap", "traffic"),
            policy=str(traffic["policy"]),
            drain_timeout=_duration(traffic, "drain_timeout", "traffic"),
            drain_quiet=_duration(traffic, "drain_quiet", "traffic"),
            input_file=_optional_str(traffic.get("input_file")),
        ),
        metrics=MetricsSettings(
            prometheus=prometheus,
            interval=_duration(metrics, "interval", "metrics"),
            sources=tuple(str(source) for source in metrics["sources"]),
            throughput_window=_duration(metrics, "throughput_window", "metrics"),
            throughput_fraction=float(metrics["throughput_fraction"]),
            split_brain_gap=_duration(metrics, "split_brain_gap", "metrics"),
            clock_tolerance=_duration(metrics, "clock_tolerance", "metrics"),
            settle_period=_duration(metrics, "settle_period", "metrics"),
        ),
        faults=FaultsSettings(
            # Documented in the schema: the dead-man timer defaults to the scenario timeout.
            ttl=_duration(faults, "ttl", "faults") if "ttl" in faults else run_settings.scenario_timeout,
            tag=str(faults["tag"]),
            state_dir=_optional_str(faults.get("state_dir")),
            dry_run=bool(faults["dry_run"]),
            verify_timeout=_duration(faults, "verify_timeout", "faults"),
            ssh_retries=int(faults["ssh_retries"]),
            ssh_timeout=_duration(faults, "ssh_timeout", "faults"),
            python=str(faults["python"]),
            memory_max=_size(faults, "memory_max", "faults"),
            disk_max=_size(faults, "disk_max", "faults"),
            client_address=_optional_str(faults.get("client_address")),
        ),
        objectives=MappingProxyType({name: _objectives(name, raw) for name, raw in data["objectives"].items()}),
        gates=_gates(data.get("gates")),
        notify=_notify(data.get("notify") or {}),
    )


def _gates(raw: Any) -> tuple[Gate, ...]:
    try:
        return parse_gates(raw)
    except GateError as exc:
        raise SettingsError(exc.path, exc.problem) from None


def _notify(raw: Mapping[str, Any]) -> NotifySettings:
    webhook = raw.get("webhook")
    if not webhook:
        return NotifySettings()
    if ("url_env" in webhook) == ("url_file" in webhook):
        raise SettingsError("notify.webhook", "give url_env (the environment variable that holds the webhook's "
                                              "URL) or url_file (the file that holds it): exactly one")
    return NotifySettings(WebhookSettings(
        url_env=_optional_str(webhook.get("url_env")),
        url_file=_optional_str(webhook.get("url_file")),
        format=str(webhook["format"]),
        when=tuple(str(item) for item in webhook["when"]),
        timeout=_duration(webhook, "timeout", "notify.webhook"),
        attempts=int(webhook["attempts"]),
        backoff=_duration(webhook, "backoff", "notify.webhook"),
        report_url=_optional_str(webhook.get("report_url")),
    ))
