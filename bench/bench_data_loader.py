import time, itertools, torch, statistics, os
from spectral_probe.data import load_dataset, make_loader, TensorImageTransform, paper_train_transform, paper_test_transform

def rate(loader, n_batches, repeats=3):
    out = []
    for _ in range(repeats):
        it = iter(loader); next(it)
        t = time.perf_counter(); n = 0
        for x, y in itertools.islice(it, n_batches):
            n += x.shape[0]
        out.append(n / (time.perf_counter() - t))
    return max(out), statistics.median(out)

ds = load_dataset("fashion-mnist", "train")
print("threads", torch.get_num_threads(), "load", os.getloadavg())
for size, nb in ((64, 150), (224, 30)):
    for train in (False, True):
        d = ds.with_transform(TensorImageTransform(size, train=train))
        best, med = rate(make_loader(d, 64, shuffle=True, seed=0), nb)
        print(f"fast batched  size={size:3d} train={train!s:5}: best {best:7.0f}  median {med:7.0f} img/s")
    for train in (False, True):
        r = round(size * 256 / 224)
        t = paper_train_transform(size, r) if train else paper_test_transform(size, r)
        d = ds.with_transform(t)
        best, med = rate(make_loader(d, 64, shuffle=True, seed=0), max(nb // 6, 5))
        print(f"per-sample v2 size={size:3d} train={train!s:5}: best {best:7.0f}  median {med:7.0f} img/s")
print("load", os.getloadavg())
