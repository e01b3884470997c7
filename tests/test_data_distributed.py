"""gt.utils.data.DistributedSampler beside torch's: the shares of each rank without shuffling
(the same indices as torch's), padding and drop_last, the shuffled orders' properties (the same
on every process for one seed and epoch, a new one each epoch), the environment, the errors."""

import pytest

from gt.utils.data import DataLoader, DistributedSampler

torch = pytest.importorskip("torch")
from torch.utils.data.distributed import DistributedSampler as TorchSampler  # noqa: E402

pytestmark = pytest.mark.first_pass     # index arithmetic only: no GT_* setting changes it


@pytest.mark.parametrize("n, replicas", [(10, 3), (9, 3), (2, 4), (7, 1), (0, 2)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_shares_are_torchs(n, replicas, drop_last):
    data = list(range(n))
    for rank in range(replicas):
        ours = DistributedSampler(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(data, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs), (rank, list(ours), list(theirs))


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_orders_agree_across_processes_and_change_with_the_epoch(drop_last):
    data, replicas = list(range(11)), 3

    def shares(epoch):
        out = []
        for rank in range(replicas):
            s = DistributedSampler(data, num_replicas=replicas, rank=rank, seed=5, drop_last=drop_last)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    first = shares(0)
    assert first == shares(0)                        # every process draws the same order
    assert first != shares(1)                        # a new one each epoch
    every = sorted(i for share in first for i in share)
    if drop_last:
        assert len(every) == 9 and len(set(every)) == 9          # 11 // 3 each, nothing repeated
    else:
        assert set(every) == set(data) and len(every) == 12       # all, one repeated to pad
    assert all(len(share) == len(TorchSampler(data, num_replicas=replicas, rank=0, drop_last=drop_last))
               for share in first)


def test_a_loader_reads_its_share_in_batches():
    data = list(range(8))
    sampler = DistributedSampler(data, num_replicas=2, rank=1, shuffle=False)
    assert [b.tolist() for b in DataLoader(data, batch_size=3, sampler=sampler)] == [[1, 3, 5], [7]]


def test_rank_and_world_come_from_torchruns_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    s = DistributedSampler(list(range(8)), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (4, 2, [2, 6])
    monkeypatch.delenv("RANK")
    with pytest.raises(RuntimeError, match="rank was not given and RANK is not set"):
        DistributedSampler(list(range(8)))
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(ValueError, match="RANK='two' is not an integer"):
        DistributedSampler(list(range(8)))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_replicas=2, rank=2), ValueError, r"Invalid rank 2, rank should be in the interval \[0, 1\]"),
    (dict(num_replicas=2, rank=-1), ValueError, "Invalid rank -1"),
    (dict(num_replicas=0, rank=0), ValueError, "num_replicas should be a positive integer"),
    (dict(num_replicas=2, rank=0, shuffle=1), TypeError, "shuffle should be a boolean value"),
    (dict(num_replicas=2, rank=0, seed=1.5), TypeError, "seed should be an int"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        DistributedSampler(list(range(4)), **kwargs)
