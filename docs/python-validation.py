"""A validation study in a dozen lines: score a folder of cores with ihcscore, join the scores with
the pathologists' CSV in pandas, print the quadratic-weighted kappa and draw a Bland-Altman plot.

    PYTHONPATH=build/python python3 docs/python-validation.py ../shared/data/gastric-tma ba.png
"""
import glob, os, sys
import numpy as np, pandas as pd
import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
import ihcscore

folder, plot = sys.argv[1], sys.argv[2]
scores = {os.path.basename(p): ihcscore.score(p, mpp=0.25, guideline="gastric")["score"]
          for p in sorted(glob.glob(os.path.join(folder, "*.jpg")))}
df = pd.read_csv(os.path.join(folder, "labels.csv"), dtype=str).assign(engine=lambda d: d.file.map(scores))
df = df[df.engine.isin(["0", "1+", "2+", "3+"])]  # not-evaluable cores are left out, as validate does
df[["engine", "ihc_score"]] = df[["engine", "ihc_score"]].apply(lambda c: c.str.rstrip("+").astype(int))
observed = pd.crosstab(df.ihc_score, df.engine).reindex(index=range(4), columns=range(4), fill_value=0).to_numpy()
weights = np.subtract.outer(range(4), range(4)) ** 2
expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
print(f"n {len(df)}, exact {np.trace(observed)}, quadratic kappa {1 - (weights * observed).sum() / (weights * expected).sum():.3f}")
mean, diff = (df.engine + df.ihc_score) / 2, df.engine - df.ihc_score
plt.scatter(mean + np.random.default_rng(0).uniform(-0.05, 0.05, len(df)), diff, c=df.her2_status.eq("positive"), cmap="coolwarm")
for y in (diff.mean(), diff.mean() + 1.96 * diff.std(), diff.mean() - 1.96 * diff.std()): plt.axhline(y, ls="--", c="grey")
plt.xlabel("mean of engine and pathologist (0-3)"); plt.ylabel("engine - pathologist"); plt.title("HER2 IHC: Bland-Altman")
plt.savefig(plot, dpi=100)
