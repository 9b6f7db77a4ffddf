"""Figure 3: a reconnect burst. Many devices with queued events come online at once.

Each device has sealed and packed its queue beforehand (capture happened offline). At time
zero every device starts pushing its queue, 500 records per request as ``Device.push`` does,
each in its own thread; a device is done when the server has acknowledged every one of its
records. Reported: time until all are acknowledged, p50 and p99 of the per-device times, and
the server process's peak RSS (VmHWM from /proc). Then what staff and devices meet right after
such a burst: a staff read of a group summary, read again every 0.2 s while it answers 503
``catching_up`` (seconds until the first answer of any kind and until one with data, and the
events waiting each time), and one more device pushing 50 new records every 0.5 s meanwhile
(the slowest push: a read must never hold the devices back).

Usage: python -m bench.burst [--quick|--full] [--devices N] [--events N] [--backend ...]
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.common import (
    DEVICE_BATCH,
    PeakSampler,
    RawDevice,
    Server,
    arguments,
    children_private_mb,
    deriver_pid,
    emit,
    event_bodies,
    make_operation,
    percentile,
    pg_url,
    proc_status,
    rss_mb,
    server_for,
    size_of,
    skipped,
)

SIZES = {
    # devices, queued events per device, roster people
    "quick": (20, 500, 2_000),
    "default": (100, 2_000, 20_000),
    "full": (100, 2_000, 20_000),
}


def main(argv: list[str] | None = None) -> int:
    parser = arguments("bench.burst", __doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--events", type=int, default=None, help="Queued events per device.")
    parser.add_argument(
        "--shape",
        choices=("field", "scatter"),
        default="field",
        help="field: each device at one checkpoint, its queue captured over --offline-hours; "
        "scatter: every event at a random checkpoint, captured 50 ms apart (a worst case: "
        "every person's events interleave across devices and conflict).",
    )
    parser.add_argument("--offline-hours", type=float, default=8.0)
    args = parser.parse_args(argv)
    size = size_of(args)
    n_devices, per_device, people = SIZES[size]
    n_devices = args.devices or n_devices
    per_device = args.events or per_device
    if args.backend == "postgresql" and not pg_url():
        skipped("burst.postgresql", "no PostgreSQL database given (set MUSTER_BENCH_PG_URL)")
        return 0

    server = server_for(args.backend, "burst")
    with server:
        op = make_operation(server, people)
        devices = [RawDevice.enrol(server, op.id, author=f"staff{i}") for i in range(n_devices)]
        if args.shape == "field":
            spacing = int(args.offline_hours * 3600 * 1000 / per_device)
        else:
            spacing = 50
        queues = [
            d.seal_batches(
                event_bodies(
                    op,
                    per_device,
                    d.author,
                    seed=i,
                    spacing_ms=spacing,
                    checkpoint=i % len(op.checkpoints) if args.shape == "field" else None,
                )
            )
            for i, d in enumerate(devices)
        ]
        rss_before = proc_status(server.pid)
        done_at = [0.0] * n_devices
        acked = [0] * n_devices
        errors: list[BaseException] = []
        go = threading.Event()

        def run(i: int) -> None:
            go.wait()
            try:
                for raw in queues[i]:
                    acked[i] += devices[i].push_until_acked(raw)
            except BaseException as exc:  # reported after the join
                errors.append(exc)
            done_at[i] = time.perf_counter()

        # Sealed beforehand too: the records a device pushes while staff first read.
        late = RawDevice.enrol(server, op.id, author="late")
        late_batches = late.seal_batches(
            event_bodies(op, LATE_BATCH * 240, late.author, seed=999), batch=LATE_BATCH
        )
        deriver = deriver_pid(server.pid)
        rounds = PeakSampler(lambda: children_private_mb(deriver))  # the deriver's rounds
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n_devices)]
        for t in threads:
            t.start()
        start = time.perf_counter()
        go.set()
        for t in threads:
            t.join()
        total = time.perf_counter() - start
        status = proc_status(server.pid)
        rounds_peak = rounds.stop()
        deriver_peak = rss_mb(deriver, "VmHWM") + rounds_peak
        if errors:
            raise errors[0]
        after = _first_read(server, op, late, late_batches)
    expected = n_devices * per_device
    if sum(acked) != expected:
        raise RuntimeError(f"acknowledged {sum(acked)} of {expected}")
    per = [t - start for t in done_at]
    params = {
        "backend": args.backend,
        "devices": n_devices,
        "events_per_device": per_device,
        "events": expected,
        "batch": DEVICE_BATCH,
        "roster_people": people,
        "median_of": 1,
        "size": size,
        "note": "one burst; p50/p99 are over devices, not over repeated runs",
        "shape": args.shape,
        "capture_spacing_ms": spacing,
    }
    emit(
        "burst.all_acked",
        total,
        "s",
        **params,
        target="<= 60",
        events_per_s=round(expected / total),
        server_errors=sum(d.server_errors for d in devices),
        retry_answers=sum(d.retries for d in devices),
        timeouts=sum(d.timeouts for d in devices),
        note_errors="server_errors: pushes answered 5xx and re-sent after backoff, as "
        "Device.push does",
    )
    emit("burst.device_p50", percentile(per, 50), "s", **params)
    emit("burst.device_p99", percentile(per, 99), "s", **params)
    emit(
        "burst.server_peak_rss",
        status["VmHWM"] / 1024 + deriver_peak,
        "MB",
        **params,
        target="< 500",
        rss_before_mb=round(rss_before["VmRSS"] / 1024, 1),
        rss_after_mb=round(status["VmRSS"] / 1024, 1),
        server_peak_mb=round(status["VmHWM"] / 1024, 1),
        deriver_peak_mb=round(deriver_peak, 1),
        deriver_rounds_peak_mb=round(rounds_peak, 1),
        note_rss="the server's peak plus its deriver process's peak (serve starts it) plus "
        "the largest private memory of the child it folds a round in (sampled every 50 ms)",
    )
    emit(
        "burst.first_read_answer",
        after["first_answer_s"],
        "s",
        **params,
        measures="the first staff read (a group summary) right after the last acknowledgement: "
        "seconds until it was answered at all (with data, or 503 catching_up)",
    )
    emit(
        "burst.first_read_caught_up",
        after["caught_up_s"],
        "s",
        **params,
        catching_up_answers=len(after["catching_up"]),
        events_waiting=after["catching_up"],
        measures="seconds from the last acknowledgement until a staff read answered with data "
        "(every acknowledged event derived); reads again every 0.2 s while catching up",
    )
    emit(
        "burst.push_while_catching_up",
        after["push_max_s"],
        "s",
        **params,
        pushes=after["pushes"],
        push_median_s=round(after["push_median_s"], 3),
        measures=f"the slowest of one device's pushes of {LATE_BATCH} new records, one every "
        "0.5 s from the first read until a read had data (each until acknowledged)",
    )
    return 0


LATE_BATCH = 50


def _first_read(server: Server, op: Any, device: RawDevice, batches: list[bytes]) -> dict[str, Any]:
    """Right after a burst: a staff read until it has data, and pushes while it waits."""
    times: list[float] = []
    failed: list[BaseException] = []
    reading = threading.Event()
    reading.set()

    def push() -> None:
        for batch in batches:
            if not reading.is_set():
                break
            started = time.perf_counter()
            try:
                device.push_until_acked(batch)
            except BaseException as exc:  # reported below
                failed.append(exc)
                break
            times.append(time.perf_counter() - started)
            time.sleep(max(0.0, 0.5 - times[-1]))

    pusher = threading.Thread(target=push)
    pusher.start()
    try:
        first, caught_up, waits = server.read_until_caught_up(
            f"/operations/{op.id}/groups/{op.groups[0]}/summary"
        )
    finally:
        reading.clear()
        pusher.join()
    if failed:
        raise failed[0]
    return {
        "first_answer_s": first,
        "caught_up_s": caught_up,
        "catching_up": waits,
        "push_max_s": max(times, default=0.0),
        "push_median_s": percentile(times, 50) if times else 0.0,
        "pushes": len(times),
    }


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
