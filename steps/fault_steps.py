"""Steps that inject faults. Every fault registers its heal before it exists, arms a dead-man timer on its
targets and returns only once its effect is proven (support/faults/, docs/faults.md)."""

from typing import Any

from behave import when
from behave.runner import Context

from support import step_types  # noqa: F401  (registers the parameter types)


@when('the network between "{first}" and "{second}" is partitioned')
def step_partition(context: Context, first: Any, second: Any) -> None:
    """Drop every packet between the two data centers, both ways, until the fault is healed or the scenario ends.

    Example: When the network between "dc1" and "dc2" is partitioned
    """
    context.world.inject_fault("partition", between=(first, second))


@when('the network between "{first}" and "{second}" is partitioned for {duration:Duration}')
def step_partition_for(context: Context, first: Any, second: Any, duration: Any) -> None:
    """Partition the two data centers, then heal the partition once the duration is over.

    Example: When the network between "dc1" and "dc2" is partitioned for 20 seconds
    """
    context.world.inject_fault("partition", between=(first, second), duration=duration)


@when('traffic from "{source}" to "{target}" is dropped')
def step_one_way(context: Context, source: Any, target: Any) -> None:
    """Drop the packets the first data center sends to the second where they arrive (a one-way partition).

    Example: When traffic from "dc1" to "dc2" is dropped
    """
    context.world.inject_fault("partition", between=(source, target), one_way=True)


@when('"{dc}" is cut off from the network')
def step_isolate(context: Context, dc: Any) -> None:
    """Cut the data center's hosts off from everything but each other and the tester's SSH connection.

    Example: When "dc1" is cut off from the network
    """
    context.world.inject_fault("isolate", dc=dc)


@when('{delay:Duration} of latency is added between "{first}" and "{second}"')
def step_latency(context: Context, delay: Any, first: Any, second: Any) -> None:
    """Hold every packet between the two data centers for the given time, each way (tc netem, or the NFQUEUE
    delayer where the hosts' kernel has no netem).

    Example: When 200 ms of latency is added between "dc1" and "dc2"
    """
    context.world.inject_fault("latency", between=(first, second), delay=delay)


@when('{delay:Duration} of latency with {jitter:Duration} of jitter is added between "{first}" and "{second}"')
def step_latency_jitter(context: Context, delay: Any, jitter: Any, first: Any, second: Any) -> None:
    """Latency that varies by up to the jitter either way (packets keep their order).

    Example: When 200 ms of latency with 50 ms of jitter is added between "dc1" and "dc2"
    """
    context.world.inject_fault("latency", between=(first, second), delay=delay, jitter=jitter)


@when('{share:Percentage} of packets between "{first}" and "{second}" are lost')
def step_loss(context: Context, share: Any, first: Any, second: Any) -> None:
    """Drop each packet between the two data centers with the given probability.

    Example: When 30% of packets between "dc1" and "dc2" are lost
    """
    context.world.inject_fault("loss", between=(first, second), probability=share)


@when('the bandwidth between "{first}" and "{second}" is limited to {rate:Number} mbit')
def step_bandwidth(context: Context, first: Any, second: Any, rate: Any) -> None:
    """Shape the traffic between the two data centers to the given rate (megabits per second), each way.

    Example: When the bandwidth between "dc1" and "dc2" is limited to 1 mbit
    """
    context.world.inject_fault("bandwidth", between=(first, second), rate=int(rate * 1_000_000))


@when('the processing element running "{operator}" in "{dc}" is killed')
def step_pe_kill(context: Context, operator: Any, dc: Any) -> None:
    """SIGKILL the process of the PE that runs the operator (found through REST) on its host.

    Example: When the processing element running "Aggregator" in "dc1" is killed
    """
    context.world.inject_fault("pe-kill", dc=dc, operator=operator)


@when('the processing element running "{operator}" in "{dc}" hangs for {duration:Duration}')
def step_pe_hang(context: Context, operator: Any, dc: Any, duration: Any) -> None:
    """SIGSTOP the PE's process, and SIGCONT it once the duration is over.

    Example: When the processing element running "Aggregator" in "dc1" hangs for 20 seconds
    """
    context.world.inject_fault("pe-hang", dc=dc, operator=operator, duration=duration)


@when('the CPU of "{dc}" is exhausted for {duration:Duration}')
def step_cpu(context: Context, dc: Any, duration: Any) -> None:
    """Keep every CPU of the data center's host busy (stress-ng in the DC's cgroup) for the duration.

    Example: When the CPU of "dc1" is exhausted for 30 seconds
    """
    context.world.inject_fault("cpu", dc=dc, duration=duration)


@when('the memory of "{dc}" is exhausted for {duration:Duration}')
def step_memory(context: Context, dc: Any, duration: Any) -> None:
    """Take the data center's free memory (stress-ng in the DC's cgroup, at most faults.memory_max) for the
    duration.

    Example: When the memory of "dc1" is exhausted for 30 seconds
    """
    context.world.inject_fault("memory", dc=dc, duration=duration)


@when('the disk of "{dc}" is exhausted for {duration:Duration}')
def step_disk(context: Context, dc: Any, duration: Any) -> None:
    """Fill the file system of the data center's snapshot directory (at most faults.disk_max) for the duration.

    Example: When the disk of "dc1" is exhausted for 30 seconds
    """
    context.world.inject_fault("disk", dc=dc, duration=duration)


@when('the "{app}" job in "{dc}" is canceled')
def step_cancel_job(context: Context, app: Any, dc: Any) -> None:
    """Cancel the application's job through the data center's REST management API and wait until it is
    gone.

    Example: When the "orders" job in "dc1" is canceled
    """
    context.world.cancel_job(app, dc)


@when('the instance in "{dc}" is stopped')
def step_instance_stop(context: Context, dc: Any) -> None:
    """Stop the data center's Streams instance (every job stops with it) until the fault is healed.

    Example: When the instance in "dc1" is stopped
    """
    context.world.inject_fault("instance-stop", dc=dc)


@when('"{dc}" is shut down in an orderly way')
def step_orderly_shutdown(context: Context, dc: Any) -> None:
    """Send the toolkit's OrderlyShutdown special message in the data center: it tells the other side it is
    leaving on purpose and stops its heartbeats.

    Example: When "dc1" is shut down in an orderly way
    """
    context.world.inject_fault("orderly-shutdown", dc=dc)


@when('the Cross-DC heartbeats between "{first}" and "{second}" are cut')
def step_heartbeat_cut(context: Context, first: Any, second: Any) -> None:
    """Drop only the toolkit's heartbeats between the two data centers, both ways (connections to each side's
    heartbeat port from the other side's hosts): snapshot replication and client traffic still get through.
    Returns once heartbeat connects go unanswered while the snapshot ports still answer.

    Example: When the Cross-DC heartbeats between "dc1" and "dc2" are cut
    """
    context.world.inject_fault("heartbeat-cut", between=(first, second))


@when('snapshot replication from "{source}" to "{target}" is cut')
def step_replication_cut(context: Context, source: Any, target: Any) -> None:
    """Drop only the snapshot messages the first data center sends to the second (connections to the second's
    snapshot ports): heartbeats keep flowing, so nothing fails over, and the second's copy of the first's state
    goes stale. Returns once snapshot connects go unanswered while the heartbeat port still answers.

    Example: When snapshot replication from "dc1" to "dc2" is cut
    """
    context.world.inject_fault("replication-cut", between=(source, target))


@when('the processing element running "{operator}" in "{dc}" keeps crashing')
def step_pe_crash_loop(context: Context, operator: Any, dc: Any) -> None:
    """Kill the PE that runs the operator each time the instance brings it back (a loop on its host), until the
    instance gives up on it (stopped, reason failure) or the fault is healed; healing brings the PE back with
    streamtool restartpe.

    Example: When the processing element running "Aggregator" in "dc1" keeps crashing
    """
    context.world.inject_fault("pe-crash-loop", dc=dc, operator=operator)


@when('the clients cannot reach "{dc}"')
def step_clients_cut(context: Context, dc: Any) -> None:
    """Drop the tester's own traffic to the data center's data exchange endpoints on its hosts; the data
    centers still see each other and the REST API still answers, so nothing fails over.

    Example: When the clients cannot reach "dc1"
    """
    context.world.inject_fault("clients-cut", dc=dc)


@when('the stored snapshots in "{dc}" are lost')
def step_snapshots_lost(context: Context, dc: Any) -> None:
    """Remove every snapshot file from the data center's snapshot directory (datacenters.<dc>.crossdc.snapshot_dir,
    the toolkit's dataSnapshotStorageDirectory): they are moved aside to tagged backups, so the heal (or the
    dead-man timer) can put back each one no newer copy has replaced. Replication goes on: the next snapshot from
    the other data center is stored as usual. Proven when none of the files is there as it was.

    Example: When the stored snapshots in "dc2" are lost
    """
    context.world.inject_fault("snapshots-lost", dc=dc)


@when('the stored snapshots in "{dc}" are corrupted')
def step_snapshots_corrupted(context: Context, dc: Any) -> None:
    """Damage every snapshot file in the data center's snapshot directory in place, as bit rot does: the last
    16 bytes of the serialised state inside each file get one bit flipped each; names, sizes and the toolkit's
    length fields stay intact, so the toolkit and the application read the state without an error and restore
    other numbers. The originals are kept as tagged backups; the heal puts back each file that is still damaged.

    Example: When the stored snapshots in "dc2" are corrupted
    """
    context.world.inject_fault("snapshots-corrupted", dc=dc)


@when('"{dc}" goes dark')
def step_dark(context: Context, dc: Any) -> None:
    """The whole data center goes dark, as in a power loss: its network is cut (nothing answers, not even a
    refusal), the processes that would relaunch its processing elements are frozen, and every PE of the
    application there (and the standby stub, if one runs there) is killed in the same instant. It stays dark until
    it comes back (`When "dc1" comes back`) or the scenario ends.

    Example: When "dc1" goes dark
    """
    context.world.inject_fault("dark", dc=dc)


@when("the fault is healed")
def step_heal(context: Context) -> None:
    """Undo the latest fault still in effect and wait until the return to normal is proven.

    Example: When the fault is healed
    """
    context.world.heal_fault()
