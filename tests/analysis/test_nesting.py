import numpy as np

from vfiobench.analysis.nesting import direct_parents, exclusive_ns, union_ns


def ref_exclusive(ts, dur, tid):
    """Stack-based reference: walk each thread's calls in (start, longer first) order."""
    out = [0] * len(ts)
    for t in set(tid):
        idx = sorted((i for i in range(len(ts)) if tid[i] == t), key=lambda i: (ts[i], -dur[i]))
        stack = []
        for i in idx:
            while stack and ts[stack[-1]] + dur[stack[-1]] <= ts[i]:
                stack.pop()
            out[i] = dur[i]
            if stack:
                out[stack[-1]] -= dur[i]
            stack.append(i)
    return out


def random_nested(rng, n_threads=3, n_top=40):
    ts, dur, tid = [], [], []

    def emit(start, length, t, depth):
        ts.append(start)
        dur.append(length)
        tid.append(t)
        if depth < 3 and length > 20:
            cursor = start + rng.integers(0, 5)
            while cursor < start + length - 10 and rng.random() < 0.7:
                child = int(rng.integers(1, max(2, (start + length - cursor) // 2)))
                emit(int(cursor), child, t, depth + 1)
                cursor += child + int(rng.integers(0, 5))

    for t in range(n_threads):
        cursor = int(rng.integers(0, 50))
        for _ in range(n_top):
            length = int(rng.integers(1, 2000))
            emit(cursor, length, 100 + t, 0)
            cursor += length + int(rng.integers(0, 100))
    return ts, dur, tid


def test_hand_example():
    # tid 1: A[0,100) holds B[10,30) which holds C[12,20); D[40,50) also in A. tid 2: E[5,50) alone
    ts, dur, tid = [0, 10, 12, 40, 5], [100, 20, 8, 10, 45], [1, 1, 1, 1, 2]
    assert exclusive_ns(ts, dur, tid).tolist() == [70, 12, 8, 10, 45]
    assert union_ns(ts, dur, tid) == 145


def test_same_times_on_other_threads_do_not_nest():
    assert exclusive_ns([0, 0], [10, 5], [1, 2]).tolist() == [10, 5]
    assert exclusive_ns([0, 0], [10, 5], [1, 1]).tolist() == [5, 5]


def test_matches_stack_reference_on_random_trees_in_any_order():
    rng = np.random.default_rng(42)
    for _ in range(5):
        ts, dur, tid = random_nested(rng)
        perm = rng.permutation(len(ts))
        ts_p, dur_p, tid_p = (np.asarray(x)[perm] for x in (ts, dur, tid))
        got = exclusive_ns(ts_p, dur_p, tid_p)
        want = np.asarray(ref_exclusive(ts_p.tolist(), dur_p.tolist(), tid_p.tolist()))
        assert np.array_equal(got, want)
        # exclusive times add up to the time covered by calls
        assert got.sum() == union_ns(ts_p, dur_p, tid_p)


def test_empty():
    assert exclusive_ns([], [], []).tolist() == []
    assert union_ns([], [], []) == 0


def test_direct_parents_pairs():
    # A[0,100) > B[10,30) > C[12,20); D[40,50) in A; E on another thread
    child, parent = direct_parents([0, 10, 12, 40, 5], [100, 20, 8, 10, 45], [1, 1, 1, 1, 2])
    assert sorted(zip(child.tolist(), parent.tolist(), strict=True)) == [(1, 0), (2, 1), (3, 0)]
    none = direct_parents([0, 10], [5, 5], [1, 1])
    assert none[0].size == 0 and none[1].size == 0
