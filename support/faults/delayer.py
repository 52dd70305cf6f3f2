"""NFQUEUE delayer: the latency fault where the target's kernel has no netem.

This file is shipped to the target host and run there with the host's ``python3`` (standard library only:
it binds ``libnetfilter_queue.so.1`` through ctypes, so a DC host needs the runtime library of Debian's
``libnetfilter-queue1``, nothing compiled or pip-installed). An iptables rule
``-j NFQUEUE --queue-num N --queue-bypass`` sends the packets to delay to queue N; this program holds each
one until ``delay ± jitter`` has passed, then accepts it. Deadlines never go backwards, so packets leave in
the order they came (TCP sees latency, not reordering). It prints ``READY`` once bound, and exits by
itself after ``--ttl`` seconds (one more dead-man layer); on SIGTERM or exit it releases every held packet.

Run: ``python3 delayer.py --queue 4242 --delay-ms 200 [--jitter-ms 20] --ttl 300``.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import heapq
import os
import random
import select
import signal
import sys
import time
from typing import Any

NF_ACCEPT = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
QUEUE_MAXLEN = 65536
RCVBUF = 8 * 1024 * 1024


class _PacketHeader(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("packet_id", ctypes.c_uint32), ("hw_protocol", ctypes.c_uint16), ("hook", ctypes.c_uint8))


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def _library() -> Any:
    name = ctypes.util.find_library("netfilter_queue") or "libnetfilter_queue.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.nfq_open.restype = ctypes.c_void_p
    lib.nfq_close.argtypes = (ctypes.c_void_p,)
    lib.nfq_bind_pf.argtypes = (ctypes.c_void_p, ctypes.c_uint16)
    lib.nfq_create_queue.restype = ctypes.c_void_p
    lib.nfq_create_queue.argtypes = (ctypes.c_void_p, ctypes.c_uint16, _CALLBACK, ctypes.c_void_p)
    lib.nfq_destroy_queue.argtypes = (ctypes.c_void_p,)
    lib.nfq_set_mode.argtypes = (ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint32)
    lib.nfq_set_queue_maxlen.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
    lib.nfq_set_queue_flags.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32)
    lib.nfq_fd.argtypes = (ctypes.c_void_p,)
    lib.nfq_nfnlh.restype = ctypes.c_void_p
    lib.nfq_nfnlh.argtypes = (ctypes.c_void_p,)
    lib.nfnl_rcvbufsiz.argtypes = (ctypes.c_void_p, ctypes.c_uint)
    lib.nfq_handle_packet.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int)
    lib.nfq_get_msg_packet_hdr.restype = ctypes.POINTER(_PacketHeader)
    lib.nfq_get_msg_packet_hdr.argtypes = (ctypes.c_void_p,)
    lib.nfq_set_verdict.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                    ctypes.c_void_p)
    return lib


class Delayer:
    def __init__(self, queue: int, delay: float, jitter: float) -> None:
        self.lib = _library()
        self.delay = delay
        self.jitter = jitter
        self.held: list[tuple[float, int, int]] = []  # (deadline, order, packet id)
        self.order = 0
        self.last_deadline = 0.0
        self.handle = self.lib.nfq_open()
        if not self.handle:
            raise OSError(ctypes.get_errno(), "nfq_open failed (root? libnetfilter_queue?)")
        self.lib.nfq_bind_pf(self.handle, 2)  # AF_INET; a no-op on current kernels, harmless when it fails
        self._callback = _CALLBACK(self._on_packet)  # keep a reference: ctypes does not
        self.queue = self.lib.nfq_create_queue(self.handle, queue, self._callback, None)
        if not self.queue:
            raise OSError(ctypes.get_errno(), f"nfq_create_queue({queue}) failed (queue already bound?)")
        if self.lib.nfq_set_mode(self.queue, NFQNL_COPY_META, 0) < 0:
            raise OSError(ctypes.get_errno(), "nfq_set_mode failed")
        self.lib.nfq_set_queue_maxlen(self.queue, QUEUE_MAXLEN)
        self.lib.nfq_set_queue_flags(self.queue, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN)
        self.lib.nfnl_rcvbufsiz(self.lib.nfq_nfnlh(self.handle), RCVBUF)
        self.fd = self.lib.nfq_fd(self.handle)

    def _on_packet(self, _qh: Any, _msg: Any, data: Any, _arg: Any) -> int:
        header = self.lib.nfq_get_msg_packet_hdr(data)
        packet_id = int.from_bytes(int(header.contents.packet_id).to_bytes(4, "little"), "big")
        offset = random.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        deadline = max(time.monotonic() + max(0.0, self.delay + offset), self.last_deadline)
        self.last_deadline = deadline
        self.order += 1
        heapq.heappush(self.held, (deadline, self.order, packet_id))
        return 0

    def release(self, everything: bool = False) -> None:
        now = time.monotonic()
        while self.held and (everything or self.held[0][0] <= now):
            _, _, packet_id = heapq.heappop(self.held)
            self.lib.nfq_set_verdict(self.queue, packet_id, NF_ACCEPT, 0, None)

    def run(self, until: float, stop: list[bool], wakeup: int) -> None:
        while not stop[0] and time.monotonic() < until:
            wait = min(until - time.monotonic(), 0.5)
            if self.held:
                wait = max(0.0, min(wait, self.held[0][0] - time.monotonic()))
            try:
                readable, _, _ = select.select([self.fd, wakeup], [], [], wait)
            except InterruptedError:
                continue
            if self.fd in readable:
                try:
                    message = os.read(self.fd, 65536)
                except OSError as exc:
                    if exc.errno in (errno.ENOBUFS, errno.EINTR, errno.EAGAIN):
                        continue
                    raise
                self.lib.nfq_handle_packet(self.handle, message, len(message))
            self.release()

    def close(self) -> None:
        self.release(everything=True)
        self.lib.nfq_destroy_queue(self.queue)
        self.lib.nfq_close(self.handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hold NFQUEUE packets for a delay, then accept them")
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--ttl", type=float, required=True, help="exit after this many seconds")
    args = parser.parse_args(argv)
    stop = [False]

    def on_signal(_signum: int, _frame: object) -> None:
        stop[0] = True

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)  # a signal wakes the select at once
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    delayer = Delayer(args.queue, args.delay_ms / 1000.0, args.jitter_ms / 1000.0)
    print(f"READY queue {args.queue} delay {args.delay_ms} ms jitter {args.jitter_ms} ms", flush=True)
    try:
        delayer.run(time.monotonic() + args.ttl, stop, wake_read)
    finally:
        delayer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
