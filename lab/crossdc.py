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
import struct
from dataclasses import dataclass
from pathlib import Path

from lab import paths

TYPE_HEARTBEAT = 1
TYPE_SNAPSHOT = 2
TYPE_SHUTDOWN = 3
TYPE_RETURNED = 4

HB_PATH = "/crossdcrx/CrossDataCenterReceiverForHB/ports/output/0/inject"


def data_path(channel: int = 0) -> str:
    return f"/crossdcrx/CrossDataCenterReceiver[{channel}]/ports/output/0/inject"


COMPOSITE = "CrossDCFailover"
OP_HB_GENERATOR = f"{COMPOSITE}.HeartbeatSignalGenerator"
OP_HB_PREPARER = f"{COMPOSITE}.HeartbeatMessagePreparer"
OP_SENDER1 = f"{COMPOSITE}.CrossDataCenterSender1"
OP_SENDER2 = f"{COMPOSITE}.CrossDataCenterSender2"
OP_RECEIVER_HB = f"{COMPOSITE}.CrossDataCenterReceiverForHB"
OP_HB_WATCHDOG = f"{COMPOSITE}.RemoteDataCenterHeartbeatWatchdog"
OP_RECEIVER = f"{COMPOSITE}.CrossDataCenterReceiver"
OP_MERGER = f"{COMPOSITE}.RemoteDCDataMerger"

OPERATORS: tuple[tuple[str, str], ...] = (
    (OP_HB_GENERATOR, "spl.utility::Beacon"),
    (OP_HB_PREPARER, "spl.utility::Custom"),
    (OP_SENDER1, "com.teracloud.streams.crossdc.failover::HttpBlobSender"),
    (OP_SENDER2, "com.teracloud.streams.crossdc.failover::HttpBlobSender"),
    (OP_RECEIVER_HB, "com.teracloud.streams.inetserver.receiver::HTTPBLOBInjection"),
    (OP_HB_WATCHDOG, "spl.utility::Custom"),
    (OP_RECEIVER, "com.teracloud.streams.inetserver.receiver::HTTPBLOBInjection"),
    (OP_MERGER, "spl.utility::Custom"),
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


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- config


def _bool(v: str) -> bool:
    return v.strip().lower() in ("true", "1", "yes")


#: lab defaults of the toolkit's configuration keys (the composite's own defaults are in the reference, §5.2)
DEFAULTS: dict[str, str] = {
    "crossDCInitDelay": "1.0",
    "heartbeatExchangeInterval": "0.5",
    "consecutiveHeartbeatMissesAllowed": "3",
    "dataSnapshotExchangeInterval": "2.0",
    "sendToAllRemoteMachines": "false",
    "alwaysLogHttpErrors": "false",
    "httpConnectionTimeout": "25",
    "httpReadTimeout": "100",
    "retainOlderDataSnapshotsAtStartup": "false",
    "sendDataSnapshotsToOriginDCAtStartup": "false",
}

#: every configuration key a job of the lab reads (submission parameters of `orders` and `orders_standby`)
CONFIG_KEYS: tuple[str, ...] = (
    "localDataCenterName",
    "crossDCOperationMode",
    "crossDCHttpPort",
    "remoteDataCenterApplicationMachineNames",
    "dataSnapshotStorageDirectory",
    *DEFAULTS,
)


def dc_defaults(dc: str) -> dict[str, str]:
    """The lab defaults of the keys that depend on the DC the job runs in."""
    return {
        "localDataCenterName": dc,
        "crossDCHttpPort": str(paths.CROSSDC_HTTP_PORT),
        "remoteDataCenterApplicationMachineNames": paths.DC_ADDR[paths.other_dc(dc)],
        "dataSnapshotStorageDirectory": str(paths.snapshots_dir(dc)),
    }


@dataclass
class Config:
    local: str
    mode: int
    http_port: int
    remotes: list[str]
    storage_dir: Path
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

    @classmethod
    def from_params(cls, params: dict[str, str], dc: str, default_mode: int) -> Config:
        def p(name: str, default: str | None = None) -> str:
            return params.get(name, DEFAULTS[name] if default is None else default)

        return cls(
            local=p("localDataCenterName", dc),
            mode=int(p("crossDCOperationMode", str(default_mode))),
            http_port=int(p("crossDCHttpPort", str(paths.CROSSDC_HTTP_PORT))),
            remotes=[
                h.strip()
                for h in p("remoteDataCenterApplicationMachineNames", paths.DC_ADDR[paths.other_dc(dc)]).split(",")
                if h.strip()
            ],
            storage_dir=Path(p("dataSnapshotStorageDirectory", str(paths.snapshots_dir(dc)))),
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
        )

    def as_params(self) -> dict[str, str]:
        """The crossdc settings as submission parameters (what the stub hands to the job it launches)."""
        return {
            "localDataCenterName": self.local,
            "crossDCHttpPort": str(self.http_port),
            "remoteDataCenterApplicationMachineNames": ",".join(self.remotes),
            "dataSnapshotStorageDirectory": str(self.storage_dir),
            "crossDCInitDelay": repr(self.init_delay),
            "heartbeatExchangeInterval": repr(self.hb_interval),
            "consecutiveHeartbeatMissesAllowed": str(self.misses_allowed),
            "dataSnapshotExchangeInterval": repr(self.snapshot_interval),
            "sendToAllRemoteMachines": str(self.send_to_all).lower(),
            "alwaysLogHttpErrors": str(self.always_log_http_errors).lower(),
            "httpConnectionTimeout": repr(self.conn_timeout),
            "httpReadTimeout": repr(self.read_timeout),
        }

    def describe(self) -> str:
        return (
            f"crossDCOperationMode={self.mode} localDataCenterName={self.local} "
            f"crossDCHttpPort={self.http_port} remoteDataCenterApplicationMachineNames={','.join(self.remotes)} "
            f"dataSnapshotStorageDirectory={self.storage_dir} crossDCInitDelay={self.init_delay} "
            f"heartbeatExchangeInterval={self.hb_interval} "
            f"consecutiveHeartbeatMissesAllowed={self.misses_allowed} "
            f"dataSnapshotExchangeInterval={self.snapshot_interval} "
            f"sendToAllRemoteMachines={str(self.send_to_all).lower()} "
            f"alwaysLogHttpErrors={str(self.always_log_http_errors).lower()} "
            f"httpConnectionTimeout={self.conn_timeout} httpReadTimeout={self.read_timeout} "
            f"retainOlderDataSnapshotsAtStartup={str(self.retain).lower()} "
            f"sendDataSnapshotsToOriginDCAtStartup={str(self.send_to_origin).lower()}"
        )
