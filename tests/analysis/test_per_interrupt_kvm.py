"""Per-interrupt accounting of the KVM ioctls (gsi_routing, irqfd, signal_msi) on hand-built runs."""

import numpy as np
import pandas as pd
import pytest

from vfiobench import schema
from vfiobench.analysis.per_interrupt import df_cost_breakdown, df_per_cycle, df_per_interrupt
from vfiobench.store import load_runs

US = 1000
ROUTE, IRQFD, MSI = schema.KVM_SET_GSI_ROUTING, schema.KVM_IRQFD, schema.KVM_SIGNAL_MSI
KVM_RUN = 0xAE80  # another KVM ioctl: no operation of the accounting


def table(rows: list[tuple[int, int, int]], **extra: object) -> pd.DataFrame:
    """Calls ``(ts µs, dur µs, tid)`` with constant or per-row ``extra`` columns."""
    df = pd.DataFrame(rows, columns=["ts_ns", "dur_ns", "tid"])
    df[["ts_ns", "dur_ns"]] *= US
    for k, v in extra.items():
        df[k] = v
    return df


def workload() -> pd.DataFrame:
    """Two cycles starting at 1000 and 2000 µs, delivered at 1800 and 2900 µs."""
    return pd.DataFrame(
        {
            "cycle": [0, 1],
            "vector": 0,
            "start_ts_ns": [1000 * US, 2000 * US],
            "trigger_ts_ns": [1200 * US, 2200 * US],
            "delivered_ts_ns": [1800 * US, 2900 * US],
            "latency_ns": [600 * US, 700 * US],
            "delivered": True,
        }
    )


def kvm_masked_tables() -> dict[str, pd.DataFrame]:
    """A masking guest under KVM, all on thread 1 (times in µs).

    Setup before the window: an irqfd assign at 300, a route commit at 400. Each cycle: SET_IRQS
    (mask), the unmask's route commit (60 / 80), SET_IRQS (unmask), QEMU's own MSI (20 / 30); in
    cycle 1 also an irqfd deassign (50), and in cycle 0 a KVM_RUN, which is no operation here.
    """
    ioctls = table([(1100, 100, 1), (1500, 100, 1), (2100, 100, 1), (2500, 100, 1)], fd=15, ret=0)
    setup = [(300, 40, 1), (400, 30, 1)]
    kvm = table(
        [*setup, (1400, 60, 1), (1450, 5, 1), (1700, 20, 1), (2400, 80, 1), (2600, 50, 1), (2700, 30, 1)],
        cmd=[IRQFD, ROUTE, ROUTE, KVM_RUN, MSI, ROUTE, IRQFD, MSI],
        ret=0,
    )
    return {"workload": workload(), "set_irqs_ioctl": ioctls, "kvm_ioctls": kvm}


def test_each_cmd_is_its_own_operation(make_run):
    rs = load_runs(make_run("k1", "stock", kvm_masked_tables()))
    s = df_per_interrupt(rs).iloc[0]
    assert s["interrupts"] == 2
    assert s["gsi_routing_per_irq"] == 1.0 and s["irqfd_per_irq"] == 0.5 and s["signal_msi_per_irq"] == 1.0
    assert s["set_irqs_per_irq"] == 2.0
    assert s["gsi_routing_us_per_irq"] == pytest.approx(70)
    assert s["irqfd_us_per_irq"] == pytest.approx(25)
    assert s["signal_msi_us_per_irq"] == pytest.approx(25)
    # system calls of their own: nothing nests in them, they nest in nothing
    assert s["gsi_routing_excl_us_per_irq"] == pytest.approx(70)
    assert s["total_us_per_irq"] == pytest.approx((400 + 140 + 50 + 50) / 2)
    assert s["path_us_per_irq"] == pytest.approx(s["total_us_per_irq"])
    assert s["background_us_per_irq"] == 0.0
    assert s["events_outside"] == 2  # the setup irqfd and route commit (KVM_RUN is no call billed)
    # operations of no probed table stay NaN
    assert np.isnan(s["pba_toggles_per_irq"]) and np.isnan(s["commits_per_irq"])
    c = df_per_cycle(rs)
    assert c["gsi_routing"].tolist() == [1, 1] and c["irqfd"].tolist() == [0, 1]
    assert c["signal_msi"].tolist() == [1, 1]
    assert c["gsi_routing_us"].tolist() == pytest.approx([60, 80])
    assert c["total_us"].tolist() == pytest.approx([280, 360])


def test_window_all_bills_the_setup_ioctls(make_run):
    s = df_per_interrupt(load_runs(make_run("k1", "stock", kvm_masked_tables())), window="all").iloc[0]
    assert s["gsi_routing_per_irq"] == 1.5 and s["irqfd_per_irq"] == 1.0
    assert s["events_outside"] == 0


def test_kvm_ioctls_alone_define_the_path_threads(make_run):
    """Only kvm_ioctls probed: the thread issuing them serves the interrupt; commits on thread 2
    (QEMU's RCU thread) are background."""
    t = kvm_masked_tables()
    del t["set_irqs_ioctl"]
    t["transaction_commit"] = table([(1300, 10, 2), (2300, 14, 2)], depth=0)
    s = df_per_interrupt(load_runs(make_run("k2", "stock", t))).iloc[0]
    assert np.isnan(s["set_irqs_per_irq"])
    assert s["path_us_per_irq"] == pytest.approx((140 + 50 + 50) / 2)
    assert s["background_us_per_irq"] == pytest.approx(12)


def test_cost_breakdown_has_the_kvm_operations(make_run):
    b = df_cost_breakdown(load_runs(make_run("k1", "stock", kvm_masked_tables()))).set_index("operation")
    assert b.loc["gsi_routing", "label"] == "KVM_SET_GSI_ROUTING"
    assert b.loc["gsi_routing", "us_per_irq"] == pytest.approx(70)
    assert b.loc[["irqfd", "signal_msi"], "us_per_irq"].tolist() == pytest.approx([25, 25])
    assert b["us_per_irq"].sum() == pytest.approx(320)


def test_a_kvm_ioctls_histogram_is_not_split(make_run):
    """In histogram mode the three ioctls share one histogram: no operation gets its calls."""
    t = kvm_masked_tables()
    t["kvm_ioctls"] = pd.DataFrame({"bucket": [100], "count": [9], "lo_ns": [100], "hi_ns": [101]})
    rs = load_runs(make_run("k3", "stock", t))
    s = df_per_interrupt(rs).iloc[0]
    assert np.isnan(s["gsi_routing_per_irq"]) and np.isnan(s["irqfd_us_per_irq"])
    assert np.isnan(s["signal_msi_excl_us_per_irq"])
    assert s["total_us_per_irq"] == pytest.approx(200)  # the SET_IRQS alone
    c = df_per_cycle(rs)
    assert c["gsi_routing"].isna().all() and c["total_us"].tolist() == pytest.approx([200, 200])
