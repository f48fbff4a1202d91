import numpy as np
import torch

from odeflow.data.discovery_families import random_instance
from odeflow.discover.model_search import SearchProblem, refine_on_observations
from odeflow.discover.observation_fit import segments_of
from odeflow.discover.options import SearchOptions, SelectionOptions
from odeflow.discover.progress import duration, progress_bar
from odeflow.discover.selection import polynomial_library, polynomial_terms, select_model


def test_the_search_announces_its_time_and_counts_its_fits(capsys):
    inst = random_instance("damped-linear", 61)
    t, x, clean = inst.observe(80, 0.01, 61)
    xdot = inst.field(None, clean).numpy()
    groups = np.minimum((5 * t.numpy() / t[-1].item()).astype(int), 4)
    sel = select_model(
        clean.numpy(), xdot, inst.variables, groups, degrees=(1,), options=SelectionOptions(ensemble=0, progress=True)
    )
    theta, terms = polynomial_library(clean.numpy(), inst.variables, 1)
    seg = segments_of(t, x, torch.zeros(len(t), dtype=torch.long), substeps=2)
    lines = []
    found = refine_on_observations(
        sel,
        SearchProblem(
            theta,
            xdot,
            polynomial_terms(inst.variables, 1),
            np.ones(len(terms), dtype=bool),
            seg,
            terms,
            inst.variables,
        ),
        SearchOptions(ensemble=0, progress=True),
        on_phase=lines.append,
    )
    assert len(lines) == 1 and "one model fit takes" in lines[0] and "at most ~" in lines[0]
    most = int(lines[0].split("at most ~")[1].split()[0])
    assert found.evaluated <= most
    err = capsys.readouterr().err
    assert "search on the observations" in err and "selecting" in err  # the two tqdm bars


def test_silent_bar_and_durations():
    bar = progress_bar(False, "x", 3)
    bar.update(1)
    bar.close()
    assert [duration(s) for s in (12.0, 200.0, 9000.0)] == ["12 s", "3.3 min", "2.5 h"]
