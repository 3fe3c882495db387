"""The real-data check: a BIDI NPLSTM with CTC learns MNIST to below 5% test error."""

import pytest

from lstmbench.training.config import RunConfig
from lstmbench.training.loop import train_run


@pytest.mark.slow
def test_bidi_nplstm_ctc_reaches_five_percent(mnist):
    # Batch 16 (gradients averaged): 3.1% after three epochs when measured here; batch 32 at
    # the same rate ends near 4.7%, too close to the bound for a check that must not flake.
    config = RunConfig(
        cell="NPLSTM",
        direction="bidi",
        output="softmax",
        target="ctc",
        hidden=100,
        lr=0.01,
        momentum=0.9,
        batch_size=16,
        epochs=3,
        eval_every=60000,
    )
    result = train_run(config, datasets=mnist, progress=False)
    print("curve:", [(p["samples"], round(p["test_error"], 4)) for p in result.curve])
    assert result.status == "done"
    assert result.best_error < 0.05, result.curve
