"""Figure 3: a reconnect burst. Many devices with queued events come online at once.

Each device has sealed and packed its queue beforehand (capture happened offline). At time
zero every device starts pushing its queue, 500 records per request as ``Device.push`` does,
each in its own thread; a device is done when the server has acknowledged every one of its
records. Reported: time until all are acknowledged, p50 and p99 of the per-device times, and
the server process's peak RSS (VmHWM from /proc).

Usage: python -m bench.burst [--quick|--full] [--devices N] [--events N] [--backend ...]
"""

from __future__ import annotations

import threading
import time

from bench.common import (
    DEVICE_BATCH,
    PeakSampler,
    RawDevice,
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
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
