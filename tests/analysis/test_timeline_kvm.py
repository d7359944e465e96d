"""The KVM route commit on the timeline (``kvm_ioctls``), hand-built events."""

from __future__ import annotations

import pandas as pd

from vfiobench.analysis.timeline import assemble_timeline, events_in_window, path_of, stage_column
from vfiobench.schema import KVM_IRQFD, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI

ROUTE = KVM_SET_GSI_ROUTING


def workload() -> pd.DataFrame:
    """Three masked interrupts: triggers at 0, 10,000 and 20,000 ns; unmask +1000, delivery +2000."""
    t = pd.Series([0, 10_000, 20_000])
    return pd.DataFrame({"trigger_ts_ns": t, "unmask_ts_ns": t + 1000, "delivered_ts_ns": t + 2000})


def kvm(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """``(ts_ns, dur_ns, cmd)`` rows on thread 1, with fd, ret and argument words."""
    df = pd.DataFrame(rows, columns=["ts_ns", "dur_ns", "cmd"])
    return df.assign(tid=1, fd=12, ret=0, arg0=3, arg1=0, arg2=24, arg3=2)


def test_route_commit_between_the_unmask_and_the_set_irqs() -> None:
    # each unmask: an irqfd ioctl (not a commit), then the route commit, then SET_IRQS at +1100
    rows = [(t + 1010, 5, KVM_IRQFD) for t in (0, 10_000, 20_000)]
    rows += [(1020, 40, ROUTE), (11_030, 50, ROUTE), (21_020, 60, ROUTE), (25_000, 9, ROUTE)]
    ioctl = pd.DataFrame({"ts_ns": [1100, 11_100, 21_100], "dur_ns": 100, "tid": 1, "start": 0, "count": 1})
    tl = assemble_timeline(workload(), {"kvm_ioctls": kvm(rows), "set_irqs_ioctl": ioctl})
    assert path_of(tl) == [
        "trigger",
        "unmask",
        "route_commit_enter",
        "route_commit",
        "set_irqs_enter",
        "set_irqs",
        "delivered",
    ]
    assert tl[stage_column("route_commit_enter")].tolist() == [20, 30, 20]
    assert tl[stage_column("route_commit")].tolist() == [40, 50, 60]
    assert tl[stage_column("set_irqs_enter")].tolist() == [40, 20, 20]
    assert tl["complete"].all()


def test_no_route_commit_no_milestone() -> None:
    """KVM ioctls recorded but no route commit (a TCG-like run, QEMU's own MSIs): not on the path."""
    rows = [(t + 1500, 5, KVM_SIGNAL_MSI) for t in (0, 10_000, 20_000)]
    tl = assemble_timeline(workload(), {"kvm_ioctls": kvm(rows)})
    assert path_of(tl) == ["trigger", "unmask", "delivered"] and tl["complete"].all()


def test_a_lost_route_commit_leaves_its_stages_missing() -> None:
    rows = [(1020, 40, ROUTE), (21_020, 60, ROUTE)]
    tl = assemble_timeline(workload(), {"kvm_ioctls": kvm(rows)})
    assert tl["missing"].tolist() == ["", "route_commit_enter, route_commit", ""]
    assert tl[stage_column("route_commit")].isna().tolist() == [False, True, False]


def test_raw_events_name_the_ioctl_and_its_words() -> None:
    ev = events_in_window(
        {"kvm_ioctls": kvm([(100, 7, ROUTE), (200, 3, KVM_IRQFD), (300, 1, 0xAE80)])}, 0, 1000
    )
    assert ev["event"].tolist() == ["KVM_SET_GSI_ROUTING", "KVM_IRQFD", "KVM ioctl 0xae80"]
    assert ev["detail"].tolist() == [
        "fd=12 ret=0 nr=3 flags=0 gsi0=24 type0=2",
        "fd=12 ret=0 eventfd=3 gsi=0 flags=24 resamplefd=2",
        "fd=12 ret=0 arg0=3 arg1=0 arg2=24 arg3=2",
    ]
    assert ev["end_ts_ns"].tolist() == [107, 203, 301]
