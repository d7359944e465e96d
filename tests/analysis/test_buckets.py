import math

import numpy as np
import pytest

from vfiobench.buckets import LogLinearBuckets, msb_u64


def ref_index(v: int, b: int) -> int:
    """The bucket function as BPF C computes it: integers only."""
    msb = v.bit_length() - 1 if v else 0
    shift = max(0, msb - b)
    return (shift << b) + (v >> shift)


def test_small_values_have_their_own_bucket():
    b = LogLinearBuckets(sub_bucket_bits=6)
    v = np.arange(128)
    idx = b.index(v)
    assert idx.tolist() == v.tolist()
    assert b.lower(idx).tolist() == v.tolist()
    assert b.upper(idx).tolist() == (v + 1).tolist()


def test_hand_computed_two_bit_layout():
    b = LogLinearBuckets(sub_bucket_bits=2)
    # v:   8 -> shift 1, (1<<2) + (8>>1)  = 8  -> [8, 10)
    #      9 -> same bucket as 8
    #     10 -> 4 + 5 = 9                     -> [10, 12)
    #     15 -> 4 + 7 = 11                    -> [14, 16)
    #     16 -> shift 2, 8 + 4 = 12           -> [16, 20)
    #     31 -> 8 + 7 = 15                    -> [28, 32)
    v = [7, 8, 9, 10, 15, 16, 31, 32]
    idx = b.index(v)
    assert idx.tolist() == [7, 8, 8, 9, 11, 12, 15, 16]
    assert b.lower(idx).tolist() == [7, 8, 8, 10, 14, 16, 28, 32]
    assert b.upper(idx).tolist() == [8, 10, 10, 12, 16, 20, 32, 40]


def test_1_5ms_and_2ms_differ_where_log2_would_not():
    b = LogLinearBuckets()
    i15, i2 = b.index([1_500_000, 2_000_000])
    assert i15 != i2
    assert int(math.log2(1_500_000)) == int(math.log2(2_000_000)) == 20  # one log2 bucket
    # and each bound is within the promised relative width
    for v, i in ((1_500_000, i15), (2_000_000, i2)):
        lo, hi = int(b.lower(i)), int(b.upper(i))
        assert lo <= v < hi
        assert (hi - lo) / lo <= 2**-6


def test_matches_integer_reference_and_bounds_hold_over_full_range():
    rng = np.random.default_rng(7)
    for bits in (1, 3, 6, 8):
        b = LogLinearBuckets(sub_bucket_bits=bits)
        exps = rng.integers(0, 63, 4000)
        v = (rng.random(4000) * (2.0**exps)).astype(np.int64)
        v = np.concatenate([v, [0, 1, 2**53 - 1, 2**53, 2**53 + 1, 2**62, 2**63 - 1]]).astype(np.int64)
        idx = b.index(v)
        assert idx.tolist() == [ref_index(int(x), bits) for x in v]
        lo, hi = b.lower(idx), b.upper(idx)
        assert np.all(lo <= v)
        assert np.all((v < hi) | (v == 2**63 - 1))
        wide = lo >= 2 ** (bits + 1)
        assert np.all((hi[wide] - lo[wide]) / lo[wide] <= 2.0**-bits + 1e-12)
        assert idx.max() < b.n_buckets


def test_buckets_tile_the_line_without_gaps():
    b = LogLinearBuckets(sub_bucket_bits=4)
    i = np.arange(b.n_buckets - 1)
    assert np.array_equal(b.upper(i), b.lower(i + 1))
    assert b.n_buckets == (63 - 4 + 1) << 4
    # index is the inverse of lower
    assert np.array_equal(b.index(b.lower(i)), i)


def test_msb_exact_at_powers_of_two():
    k = np.arange(1, 64, dtype=np.uint64)
    pow2 = np.left_shift(np.uint64(1), k)
    assert msb_u64(pow2).tolist() == k.tolist()
    assert msb_u64(pow2 - np.uint64(1)).tolist() == (k - 1).tolist()
    assert msb_u64(np.array([0, 1], dtype=np.uint64)).tolist() == [0, 0]


def test_clamping_negative_float_and_huge():
    b = LogLinearBuckets()
    assert b.index([-5, -1]).tolist() == [0, 0]
    assert b.index(np.array([2.9, 1e300, np.nan])).tolist() == [2, b.n_buckets - 1, 0]
    assert b.index(np.array([2**64 - 1], dtype=np.uint64)).tolist() == [b.n_buckets - 1]
    assert int(b.upper(b.n_buckets - 1)) == np.iinfo(np.int64).max


def test_counts_and_invalid_layouts():
    b = LogLinearBuckets()
    assert b.counts([1, 1, 3]).tolist() == [0, 2, 0, 1]
    assert b.counts([]).tolist() == []
    with pytest.raises(ValueError, match="sub_bucket_bits"):
        LogLinearBuckets(sub_bucket_bits=0)
    with pytest.raises(ValueError, match="max_bits"):
        LogLinearBuckets(sub_bucket_bits=6, max_bits=64)
    assert LogLinearBuckets(6).relative_error == 1 / 64
