"""Run by tests/test_distributed.py, under torchrun (2 ranks) and as a single process:
    torchrun --standalone --nproc_per_node=2 tests/dist_check.py OUT_DIR
One fixed global batch of 4 groups -> each rank updates on its share -> losses and weights to OUT_DIR.
Rank r also runs r*2+1 sampler calls inside gathered() first: uneven re-rollout counts must not hang. Then
one update per estimator with r + 1 groups on rank r: uneven groups must not hang either."""
import dataclasses
import os
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import model as M  # noqa: E402
from common import gathered, setup, shard  # noqa: E402
import train_igpo as T  # noqa: E402
from sample import sample  # noqa: E402


def main(out_dir):
    rt = setup("cpu", seed=0)
    cfg = T.Config(group_size=2, gen_len=8, mu=2, lr=1e-2, beta=0.01)
    net = shard(M.build(M.ModelConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=64), rt.device, seed=0), rt)
    ref = shard(M.build(M.ModelConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=64), rt.device, seed=0), rt)
    mask_id, pad_id = 261, 256
    with gathered(net):  # different numbers of forwards per rank, like IGPO's per-rank re-rollouts
        for _ in range(2 * rt.rank + 1):
            sample(net, [[1, 2, 3]], 8, 4, 4, mask_id, pad_id)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 256, (n,), generator=g).tolist() for n in (5, 7, 6, 5)]
    comps = torch.randint(0, 256, (8, 8), generator=g)
    adv = torch.randn(8, generator=g)
    n = len(prompts) // rt.world_size
    mine = slice(rt.rank * n, (rt.rank + 1) * n)
    rows = slice(rt.rank * n * 2, (rt.rank + 1) * n * 2)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    with torch.no_grad():
        olds = [T.token_logprobs(net, prompts[mine], pad_id, mask_id, 8, comps[rows], 2, with_entropy=True)]
        refs = [T.token_logprobs(ref, prompts[mine], pad_id, mask_id, 8, comps[rows], 2)]
    losses = []
    for step in range(2):
        keep = torch.ones(n * 2, 8)  # every position enters the loss
        stats, _ = T.update(net, opt, rt, prompts[mine], comps[rows], olds, refs, adv[rows], keep, cfg, step,
                            pad_id, mask_id)
        dist.all_reduce(stats, op=dist.ReduceOp.AVG)
        losses.append(stats[0].item())
    sd = {k: v.clone() for k, v in M.full_state_dict(net).items()}  # one rank's are the live parameters
    uneven, k = {}, rt.rank + 1  # rank r: r + 1 groups
    for estimator, K in (("mean_field", 1), ("coupled", 1), ("elbo", 2)):
        c = dataclasses.replace(cfg, estimator=estimator, estimator_samples=K)
        args, est = (prompts[:k], pad_id, mask_id, 8, comps[:2 * k], 2), dict(estimator=estimator, samples=K)
        seeds = T.mask_seeds(c, 2, rt.rank)  # update()'s, as train_igpo.train_loop takes them
        with torch.no_grad():
            olds = [T.token_logprobs(net, *args, 0, s, with_entropy=True, **est) for s in seeds]
            refs = [T.token_logprobs(ref, *args, 0, s, **est) for s in seeds]
        rows = (comps[:2 * k], olds, refs, adv[:2 * k], torch.ones(2 * k, 8))
        stats, _ = T.update(net, opt, rt, prompts[:k], *rows, c, 2, pad_id, mask_id)
        dist.all_reduce(stats, op=dist.ReduceOp.AVG)
        uneven[estimator] = stats.tolist()
    if rt.rank == 0:
        out = {"losses": losses, "state": sd, "uneven": uneven}
        torch.save(out, os.path.join(out_dir, f"world{rt.world_size}.pt"))
    dist.barrier()  # every rank done before the group goes: gloo aborts a process whose peer left first
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
