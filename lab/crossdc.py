"""Cross-DC failover toolkit stand-in: names, wire codec and configuration (this module), the HTTP transport
(`lab.crossdc_transport`) and the CrossDataCenterFailover composite (`lab.crossdc_composite`: heartbeat,
watchdog, snapshot sender/receiver). This module is the leaf the others, the applications and the instance
service build on.

Wire format and behaviour follow the toolkit (reference §5.3/§5.4):
- plain HTTP POST, `Content-Type: application/octet-stream`, receiver answers 204;
- payload = SPL NativeByteBuffer (little-endian) serialisation of `HeartbeatMessageType`:
  `uint32 type | uint64 cnt | rstring origin | uint64 len + blob | rstring snapshotOrigin`;
- heartbeats to `:<crossDCHttpPort>/crossdcrx/CrossDataCenterReceiverForHB/ports/output/0/inject`, snapshot
  messages (type 2/3/4) to `:<crossDCHttpPort+1>/crossdcrx/CrossDataCenterReceiver[0]/ports/output/0/inject`.

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from lab import paths

TYPE_HEARTBEAT = 1
TYPE_SNAPSHOT = 2
TYPE_SHUTDOWN = 3
TYPE_RETURNED = 4

HB_PATH = "/crossdcrx/CrossDataCenterReceiverForHB/ports/output/0/inject"


def data_path(channel: int = 0) -> str:
    return f"/crossdcrx/CrossDataCenterReceiver[{channel}]/ports/output/0/inject"


#: the alias the lab's `orders` application gives the composite (`... as OrdersXDC = CrossDataCenterFailover(...)`);
#: the toolkit's samples, and the lab's standalone stub like the passive sample, use `CrossDCFailover`
ORDERS_ALIAS = "OrdersXDC"
#: ... and the one its `telemetry` application gives it
TELEMETRY_ALIAS = "TelemetryXDC"
SAMPLE_ALIAS = "CrossDCFailover"


@dataclass(frozen=True)
class OpNames:
    """The composite's operator names under the alias an application gives it. The snapshot sender and
    receiver sit in the `@parallel(width=numberOfHttpSenderReceiverPairs)` region, so their names carry the
    channel (`[0]`; the lab runs one pair)."""

    alias: str

    @property
    def hb_generator(self) -> str:
        return f"{self.alias}.HeartbeatSignalGenerator"

    @property
    def hb_preparer(self) -> str:
        return f"{self.alias}.HeartbeatMessagePreparer"

    @property
    def sender1(self) -> str:
        return f"{self.alias}.CrossDataCenterSender1"

    @property
    def sender2(self) -> str:
        return f"{self.alias}.CrossDataCenterSender2[0]"

    @property
    def receiver_hb(self) -> str:
        return f"{self.alias}.CrossDataCenterReceiverForHB"

    @property
    def hb_watchdog(self) -> str:
        return f"{self.alias}.RemoteDataCenterHeartbeatWatchdog"

    @property
    def receiver(self) -> str:
        return f"{self.alias}.CrossDataCenterReceiver[0]"

    @property
    def merger(self) -> str:
        return f"{self.alias}.RemoteDCDataMerger"

    def operators(self) -> tuple[tuple[str, str], ...]:
        """(name, kind) of the operators the lab models, in graph order."""
        return (
            (self.hb_generator, "spl.utility::Beacon"),
            (self.hb_preparer, "spl.utility::Custom"),
            (self.sender1, "com.teracloud.streams.crossdc.failover::HttpBlobSender"),
            (self.sender2, "com.teracloud.streams.crossdc.failover::HttpBlobSender"),
            (self.receiver_hb, "com.teracloud.streams.inetserver.receiver::HTTPBLOBInjection"),
            (self.hb_watchdog, "spl.utility::Custom"),
            (self.receiver, "com.teracloud.streams.inetserver.receiver::HTTPBLOBInjection"),
            (self.merger, "spl.utility::Custom"),
        )


# ---------------------------------------------------------------------------------------------- codec


@dataclass(frozen=True)
class Message:
    type: int
    cnt: int
    origin: str
    blob: bytes = b""
    snapshot_origin: str = ""


def _rstring(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) < 128:
        return bytes((len(b),)) + b
    return b"\x80" + struct.pack("<I", len(b)) + b


def encode(msg: Message) -> bytes:
    return b"".join(
        (
            struct.pack("<IQ", msg.type, msg.cnt),
            _rstring(msg.origin),
            struct.pack("<Q", len(msg.blob)),
            msg.blob,
            _rstring(msg.snapshot_origin),
        )
    )


def _read_rstring(data: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(data):
        raise ValueError("truncated rstring")
    first = data[pos]
    pos += 1
    if first < 128:
        n = first
    elif first == 0x80:
        if pos + 4 > len(data):
            raise ValueError("truncated rstring length")
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
    else:
        raise ValueError(f"bad rstring length byte {first:#x}")
    if pos + n > len(data):
        raise ValueError("truncated rstring bytes")
    return data[pos : pos + n].decode("utf-8"), pos + n


def decode(data: bytes) -> Message:
    if len(data) < 12:
        raise ValueError("payload too short")
    mtype, cnt = struct.unpack_from("<IQ", data, 0)
    origin, pos = _read_rstring(data, 12)
    if pos + 8 > len(data):
        raise ValueError("truncated blob length")
    (blen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    if pos + blen > len(data):
        raise ValueError("truncated blob")
    blob = data[pos : pos + blen]
    pos += blen
    snap_origin, pos = _read_rstring(data, pos)
    if pos != len(data):
        raise ValueError("trailing bytes")
    return Message(mtype, cnt, origin, blob, snap_origin)


def status_notification(up: bool) -> str:
    """The sample applications' trace text on a RemoteDataCenterStatus tuple (the toolkit traces none)."""
    status = "coming up and running normally" if up else "going down due to failure or planned maintenance"
    return f"Received a notification about the remote data center {status}."


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- config


def _bool(v: str) -> bool:
    return v.strip().lower() in ("true", "1", "yes")


#: the composite's own defaults (CrossDataCenterFailover.spl `param` defaults, reference §5.2): with these
#: the heartbeat ticks every 444444444 s, that is never
COMPOSITE_DEFAULTS: dict[str, str] = {
    "localDataCenterName": "dc1",
    "crossDCOperationMode": "1",
    "crossDCHttpPort": "25091",
    "remoteDataCenterApplicationMachineNames": "localhost",
    "crossDCInitDelay": "40.00",
    "heartbeatExchangeInterval": "444444444.00",
    "consecutiveHeartbeatMissesAllowed": "4",
    "dataSnapshotExchangeInterval": "888888888.00",
    "dataSnapshotStorageDirectory": "",
    "sendToAllRemoteMachines": "false",
    "alwaysLogHttpErrors": "false",
    "httpConnectionTimeout": "25",
    "httpReadTimeout": "100",
    "retainOlderDataSnapshotsAtStartup": "false",
    "sendDataSnapshotsToOriginDCAtStartup": "false",
}

#: every configuration key the lab's toolkit reads (from the config file, else the application configuration)
CONFIG_KEYS: tuple[str, ...] = tuple(COMPOSITE_DEFAULTS)

#: the application configuration the composite reads its keys from (`<namespace>::<Main>_<key>`)
APP_CONFIG_NAME = "CrossDCFailover"

#: the only submission-time values of the toolkit (the samples declare `configFileName` and pass it on)
SUBMISSION_PARAMETERS: dict[str, str] = {"numberOfHttpSenderReceiverPairs": "1", "configFileName": ""}

#: the lab's timings, written by `lab up` into each DC's config files (whole seconds, see `snapshot_due`)
LAB_TIMINGS: dict[str, str] = {
    "heartbeatExchangeInterval": "1.0",
    "consecutiveHeartbeatMissesAllowed": "3",
    "dataSnapshotExchangeInterval": "2.0",
    "crossDCInitDelay": "1.0",
}


def parse_config_text(text: str) -> dict[str, str]:
    """The toolkit's `readValueFromConfigFile` over every line: spaces (only spaces) trimmed, empty and `#`
    lines skipped, a line counts only when splitting it at `=` (empty pieces dropped, as SPL `tokenize(line,
    "=", false)` does) gives exactly two pieces; the first line of a key wins."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip(" ")
        if not line or line.startswith("#"):
            continue
        tokens = [t for t in line.split("=") if t]
        if len(tokens) == 2:
            found.setdefault(tokens[0].strip(" "), tokens[1].strip(" "))
    return found


def read_config_file(name: str) -> dict[str, str]:
    """The settings in config file `name`; an empty name or a file that cannot be read gives none (the toolkit
    then falls back to the application configuration and the defaults, silently)."""
    if not name:
        return {}
    try:
        return parse_config_text(Path(name).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def read_app_config(dc: str, name: str = APP_CONFIG_NAME) -> dict[str, str]:
    """The properties of the instance's application configuration `name` (none when it does not exist), as
    the instance stores it: `appconfig_dir(dc)/<name>.json` = `{"name", "description", "properties"}`."""
    try:
        doc = json.loads((paths.appconfig_dir(dc) / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    props = doc.get("properties") if isinstance(doc, dict) else None
    if not isinstance(props, dict):
        return {}
    return {str(k): str(v) for k, v in props.items()}


def dc_defaults(dc: str) -> dict[str, str]:
    """The DC-specific settings the lab writes into a DC's config files (`lab up`)."""
    return {
        "localDataCenterName": dc,
        "crossDCHttpPort": str(paths.CROSSDC_HTTP_PORT),
        "remoteDataCenterApplicationMachineNames": paths.DC_ADDR[paths.other_dc(dc)],
        "dataSnapshotStorageDirectory": str(paths.snapshots_dir(dc)),
    }


def lab_file_settings(dc: str, mode: int) -> dict[str, str]:
    """What `lab up` writes into `crossdc_dir(dc)/orders.cfg` (mode 1) and `orders-standby.cfg` (mode 0)."""
    return {
        "localDataCenterName": dc,
        "crossDCOperationMode": str(mode),
        **{k: v for k, v in dc_defaults(dc).items() if k != "localDataCenterName"},
        **LAB_TIMINGS,
        "retainOlderDataSnapshotsAtStartup": "false",
        "sendDataSnapshotsToOriginDCAtStartup": "false",
    }


def config_file_text(settings: dict[str, str], title: str) -> str:
    lines = [f"# {title}", "# key=value lines as the toolkit's etc/crossdc-config.txt; read once at operator start"]
    lines += [f"{k}={v}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def write_config_file(path: Path, settings: dict[str, str], title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(config_file_text(settings, title), encoding="utf-8")
    os.replace(tmp, path)


def snapshot_due(cnt: int, hb_interval: float, snapshot_interval: float) -> bool:
    """HeartbeatMessagePreparer's `((_heartbeatCnt * (uint64)H) % (uint64)D) == 0ul`, with the C++ casts:
    both intervals truncate to whole seconds and the product wraps at 2**64. A sub-second H gives 0, so every
    tick is a snapshot tick; a sub-second D gives a modulo by zero (raised as ZeroDivisionError; the caller
    reproduces what it does to the process)."""
    h = int(hb_interval) & 0xFFFFFFFFFFFFFFFF
    d = int(snapshot_interval) & 0xFFFFFFFFFFFFFFFF
    if d == 0:
        raise ZeroDivisionError("integer modulo by zero: (uint64)dataSnapshotExchangeInterval is 0")
    return ((cnt * h) & 0xFFFFFFFFFFFFFFFF) % d == 0


@dataclass
class Config:
    local: str
    mode: int
    http_port: int
    remotes: list[str]
    storage_dir: Path | None
    init_delay: float
    hb_interval: float
    misses_allowed: int
    snapshot_interval: float
    retain: bool
    send_to_origin: bool
    send_to_all: bool
    always_log_http_errors: bool
    conn_timeout: float
    read_timeout: float
    bind_addr: str
    #: where each key's value came from: "file", "appconfig" or "default"
    sources: dict[str, str] = field(default_factory=dict)
    config_file: str = ""

    @classmethod
    def load(cls, dc: str, config_file: str, app_config: dict[str, str], app_name: str) -> Config:
        """The settings as the composite reads them: config file `config_file` > application configuration
        properties `app_config` (keys `<app_name>_<key>`, `app_name` = `<namespace>::<Main>`) > defaults.

        `dc` is the DC this process runs in (only for the address its receivers bind to)."""
        file_values = read_config_file(config_file)
        sources: dict[str, str] = {}

        def p(key: str) -> str:
            if key in file_values:
                sources[key] = "file"
                return file_values[key]
            prop = f"{app_name}_{key}"
            if prop in app_config:
                sources[key] = "appconfig"
                return app_config[prop]
            sources[key] = "default"
            return COMPOSITE_DEFAULTS[key]

        storage = p("dataSnapshotStorageDirectory")
        return cls(
            local=p("localDataCenterName"),
            mode=int(p("crossDCOperationMode")),
            http_port=int(p("crossDCHttpPort")),
            remotes=[h.strip() for h in p("remoteDataCenterApplicationMachineNames").split(",") if h.strip()],
            storage_dir=Path(storage) if storage else None,
            init_delay=float(p("crossDCInitDelay")),
            hb_interval=float(p("heartbeatExchangeInterval")),
            misses_allowed=int(p("consecutiveHeartbeatMissesAllowed")),
            snapshot_interval=float(p("dataSnapshotExchangeInterval")),
            retain=_bool(p("retainOlderDataSnapshotsAtStartup")),
            send_to_origin=_bool(p("sendDataSnapshotsToOriginDCAtStartup")),
            send_to_all=_bool(p("sendToAllRemoteMachines")),
            always_log_http_errors=_bool(p("alwaysLogHttpErrors")),
            conn_timeout=float(p("httpConnectionTimeout")),
            read_timeout=float(p("httpReadTimeout")),
            bind_addr=paths.DC_ADDR[dc],
            sources=sources,
            config_file=config_file,
        )

    def describe(self) -> str:
        values = {
            "crossDCOperationMode": str(self.mode),
            "localDataCenterName": self.local,
            "crossDCHttpPort": str(self.http_port),
            "remoteDataCenterApplicationMachineNames": ",".join(self.remotes),
            "dataSnapshotStorageDirectory": str(self.storage_dir or ""),
            "crossDCInitDelay": str(self.init_delay),
            "heartbeatExchangeInterval": str(self.hb_interval),
            "consecutiveHeartbeatMissesAllowed": str(self.misses_allowed),
            "dataSnapshotExchangeInterval": str(self.snapshot_interval),
            "sendToAllRemoteMachines": str(self.send_to_all).lower(),
            "alwaysLogHttpErrors": str(self.always_log_http_errors).lower(),
            "httpConnectionTimeout": str(self.conn_timeout),
            "httpReadTimeout": str(self.read_timeout),
            "retainOlderDataSnapshotsAtStartup": str(self.retain).lower(),
            "sendDataSnapshotsToOriginDCAtStartup": str(self.send_to_origin).lower(),
        }
        return f"configFileName={self.config_file or '(none)'} " + " ".join(
            f"{k}={v}({self.sources.get(k, 'default')})" for k, v in values.items()
        )
