"""The named explicit Runge–Kutta methods and how to look them up by name.

A new explicit method is a `ButcherTableau` plus its order; nothing else in the solver
needs to change. Coefficients: Hairer, Nørsett & Wanner (1993) for euler … rk4, dopri5 and
DOP853; Bogacki & Shampine (1989) for bosh3; Tsitouras (2011) for tsit5.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

from .tableau import ButcherTableau


def _poly_mul(p: Sequence[float], q: Sequence[float]) -> List[float]:
    """Product of two polynomials given by ascending coefficients."""
    out = [0.0] * (len(p) + len(q) - 1)
    for i, x in enumerate(p):
        for j, y in enumerate(q):
            out[i + j] += x * y
    return out


def _from_factors(scale: float, *factors: Sequence[float]) -> List[float]:
    """Coefficients of theta^1..theta^4 of scale * prod(factors) (the constant term is 0)."""
    poly = [scale]
    for f in factors:
        poly = _poly_mul(poly, f)
    assert abs(poly[0]) < 1e-15, "dense-output polynomials vanish at theta = 0"
    return poly[1:]


EULER = ButcherTableau(name="euler", order=1, c=[0.0], a=[[]], b=[1.0])

MIDPOINT = ButcherTableau(name="midpoint", order=2, c=[0.0, 0.5], a=[[], [0.5]], b=[0.0, 1.0])

HEUN = ButcherTableau(
    name="heun", order=2, c=[0.0, 1.0], a=[[], [1.0]], b=[0.5, 0.5],
    b_err=[-0.5, 0.5], error_order=1,  # Heun–Euler pair
)

RK4 = ButcherTableau(
    name="rk4", order=4, c=[0.0, 0.5, 0.5, 1.0],
    a=[[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]],
    b=[1 / 6, 1 / 3, 1 / 3, 1 / 6],
)

# Kutta's 3/8 rule: fourth order like the classic scheme, smaller error constant; torchdiffeq's 'rk4'.
RK4_38 = ButcherTableau(
    name="rk4_38", order=4, c=[0.0, 1 / 3, 2 / 3, 1.0],
    a=[[], [1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]],
    b=[1 / 8, 3 / 8, 3 / 8, 1 / 8],
)

# Heun's third-order method (Hairer I, Table II.1.1): fixed steps only.
HEUN3 = ButcherTableau(
    name="heun3", order=3, c=[0.0, 1 / 3, 2 / 3], a=[[], [1 / 3], [0.0, 2 / 3]], b=[0.25, 0.0, 0.75],
)

# Runge–Kutta–Fehlberg 2(1) (Fehlberg 1969): the second-order solution is propagated and the
# first-order one (weights 1/256, 255/256, 0) gives the error estimate.
FEHLBERG2 = ButcherTableau(
    name="fehlberg2", order=2, c=[0.0, 0.5, 1.0], a=[[], [0.5], [1 / 256, 255 / 256]],
    b=[1 / 512, 255 / 256, 1 / 512], b_err=[-1 / 512, 0.0, 1 / 512], error_order=1,
)

BOSH3 = ButcherTableau(
    name="bosh3", order=3, c=[0.0, 0.5, 0.75, 1.0],
    a=[[], [0.5], [0.0, 0.75], [2 / 9, 1 / 3, 4 / 9]],
    b=[2 / 9, 1 / 3, 4 / 9, 0.0],
    b_err=[2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8], error_order=2,
)

# Dormand–Prince 5(4) with Shampine's fourth-order continuous extension.
_DOPRI5_B = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]
_DOPRI5_BHAT = [5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40]
DOPRI5 = ButcherTableau(
    name="dopri5", order=5, c=[0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0],
    a=[
        [],
        [1 / 5],
        [3 / 40, 9 / 40],
        [44 / 45, -56 / 15, 32 / 9],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
        _DOPRI5_B[:6],
    ],
    b=_DOPRI5_B,
    b_err=[x - y for x, y in zip(_DOPRI5_B, _DOPRI5_BHAT)], error_order=4,
    dense=[
        [1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
        [0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
        [0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632],
        [0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
        [0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
    ],
)

# Tsitouras 5(4) with its own fourth-order interpolant (polynomials given in factored form).
_TSIT5_B = [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
            -3.290069515436081, 2.324710524099774, 0.0]
TSIT5 = ButcherTableau(
    name="tsit5", order=5, c=[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    a=[
        [],
        [0.161],
        [-0.008480655492356989, 0.335480655492357],
        [2.897153057105493, -6.359448489975075, 4.3622954328695815],
        [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
        [5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
         -0.028269050394068383],
        _TSIT5_B[:6],
    ],
    b=_TSIT5_B,
    b_err=[0.001780011052226, 0.000816434459657, -0.007880878010262, 0.144711007173263,
           -0.582357165452555, 0.458082105929187, -1 / 66],
    error_order=4,
    dense=[
        _from_factors(-1.0530884977290216, [0, 1], [-1.3299890189751412, 1],
                      [0.7139816917074209, -1.4364028541716351, 1]),
        _from_factors(0.1017, [0, 0, 1], [1.2949852507374631, -2.1966568338249754, 1]),
        _from_factors(2.490627285651252793, [0, 0, 1], [1.57803468208092486, -2.38535645472061657, 1]),
        _from_factors(-16.54810288924490272, [0, 0, 1], [-1.21712927295533244, 1],
                      [-0.61620406037800089, 1]),
        _from_factors(47.37952196281928122, [0, 0, 1], [-1.203071208372362603, 1],
                      [-0.658047292653547382, 1]),
        _from_factors(-34.87065786149660974, [0, 0, 1], [-1.2, 1], [-0.666666666666666667, 1]),
        _from_factors(2.5, [0, 0, 1], [-1.0, 1], [-0.6, 1]),
    ],
)

# Dormand–Prince 8(5) as in Hairer's DOP853: 12 stages, error from the fifth-order estimator.
_DOP853_C = [0.0, 0.05260015195876773, 0.0789002279381516, 0.1183503419072274,
             0.2816496580927726, 0.3333333333333333, 0.25, 0.3076923076923077,
             0.6512820512820513, 0.6, 0.8571428571428571, 1.0]
_DOP853_A = [
    [],
    [0.05260015195876773],
    [0.0197250569845379, 0.0591751709536137],
    [0.02958758547680685, 0.0, 0.08876275643042054],
    [0.2413651341592667, 0.0, -0.8845494793282861, 0.924834003261792],
    [0.037037037037037035, 0.0, 0.0, 0.17082860872947386, 0.12546768756682242],
    [0.037109375, 0.0, 0.0, 0.17025221101954405, 0.06021653898045596, -0.017578125],
    [0.03709200011850479, 0.0, 0.0, 0.17038392571223998, 0.10726203044637328,
     -0.015319437748624402, 0.008273789163814023],
    [0.6241109587160757, 0.0, 0.0, -3.3608926294469414, -0.868219346841726,
     27.59209969944671, 20.154067550477894, -43.48988418106996],
    [0.47766253643826434, 0.0, 0.0, -2.4881146199716677, -0.590290826836843,
     21.230051448181193, 15.279233632882423, -33.28821096898486, -0.020331201708508627],
    [-0.9371424300859873, 0.0, 0.0, 5.186372428844064, 1.0914373489967295,
     -8.149787010746927, -18.52006565999696, 22.739487099350505, 2.4936055526796523,
     -3.0467644718982196],
    [2.273310147516538, 0.0, 0.0, -10.53449546673725, -2.0008720582248625,
     -17.9589318631188, 27.94888452941996, -2.8589982771350235, -8.87285693353063,
     12.360567175794303, 0.6433927460157636],
]
DOPRI8 = ButcherTableau(
    name="dopri8", order=8, c=_DOP853_C, a=_DOP853_A,
    b=[0.054293734116568765, 0.0, 0.0, 0.0, 0.0, 4.450312892752409, 1.8915178993145003,
       -5.801203960010585, 0.3111643669578199, -0.1521609496625161, 0.20136540080403034,
       0.04471061572777259],
    b_err=[0.01312004499419488, 0.0, 0.0, 0.0, 0.0, -1.2251564463762044, -0.4957589496572502,
           1.6643771824549864, -0.35032884874997366, 0.3341791187130175, 0.08192320648511571,
           -0.022355307863886294],
    error_order=5,
)

METHODS: Dict[str, ButcherTableau] = {
    m.name: m for m in (EULER, MIDPOINT, HEUN, RK4, RK4_38, HEUN3, BOSH3, FEHLBERG2, DOPRI5, TSIT5, DOPRI8)
}


def _other_methods() -> Dict[str, object]:
    """Methods that are not explicit RK tableaus (imported late: they build on this module)."""
    from .adams import Adams
    from .implicit import IMPLICIT_METHODS
    from .scipy_method import ScipySolver
    return {"explicit_adams": Adams(implicit=False), "implicit_adams": Adams(implicit=True),
            "scipy_solver": ScipySolver(), **IMPLICIT_METHODS}


def all_method_names(adaptive: Optional[bool] = None) -> List[str]:
    """Every method name get_method accepts (only the adaptive ones, or only the fixed ones)."""
    ms = {**METHODS, **_other_methods()}
    return sorted(k for k, m in ms.items() if adaptive is None or bool(getattr(m, "adaptive")) == adaptive)


def get_method(method: Union[str, ButcherTableau, object]) -> ButcherTableau:
    """Return the method for a name, or the method object itself; unknown names list the valid ones.

    Explicit RK methods are `ButcherTableau`s; the others (Adams, implicit RK, scipy) are
    objects with ``name``, ``order``, ``adaptive`` and ``integrate(...)``."""
    if isinstance(method, ButcherTableau) or hasattr(method, "integrate"):
        return method  # type: ignore[return-value]
    if isinstance(method, str) and method in METHODS:
        return METHODS[method]
    others = _other_methods()
    if isinstance(method, str) and method in others:
        return others[method]  # type: ignore[return-value]
    raise ValueError(
        f"unknown method {method!r}; valid methods are {', '.join(all_method_names())} "
        "(or pass a ButcherTableau)"
    )
