"""Responsible engineering, in compute and data: what differentially private training costs,
and how much data a small subgroup needs before its metric can be trusted.

Private training (DP-SGD, Abadi et al. 2016, "Deep Learning with Differential Privacy", CCS,
Algorithm 1). Each example's gradient is clipped to norm ``C`` before the sum, and Gaussian
noise is added to the sum::

    g_bar_i = g_i / max(1, ||g_i|| / C)
    g_tilde = (sum_i g_bar_i + N(0, sigma^2 C^2 I)) / B      noise std of the mean: sigma C / B

Clipping needs every example's gradient norm, which standard backpropagation never forms:
the backward pass grows (ghost clipping runs it twice, Li et al. 2022; Book-Keeping once, with
extra norm computations, Bu et al. 2023). The growth is taken from published measurements
(``zoo/data/responsible.yaml``): a whole-step time factor ``F`` per clipping method, the same
as the backward multiplied by ``k = 1 + 1.5 (F - 1)`` when the backward has twice the forward's
flops. On a training step (DistributedResult, module ``distributed``) the micro-batch compute
grows by ``F``, its collectives and the optimizer and DP reduction do not::

    t_mb'  = F (t_mb - t_comm,mb) + t_comm,mb
    step'  = M m t_mb' + t_bubble t_mb' / t_mb + t_opt + t_DP,exposed

``M`` (``batch_multiplier``) is how many times the batch a private run takes per step, as
``M m`` micro-batches of the same size (the noise of the mean falls as ``1 / B``); for the
same number of steps the run costs ``step' / step`` times the non-private one.

Subgroup data (Hoeffding 1963, "Probability Inequalities for Sums of Bounded Random
Variables", JASA 58(301), Theorem 2, two-sided by the union bound). A metric averaged over
``n`` independent samples with values in a range ``R`` (1 for accuracy or any rate) is within
``+-eps`` of its mean with probability at least ``1 - delta`` once::

    n >= R^2 ln(2 / delta) / (2 eps^2)
    N  = n / p        samples in all when the subgroup is a fraction p of the data (expected
                      count; a sample of N holds n subgroup members on average)

and a dataset of ``D`` samples certifies ``eps = R sqrt(ln(2/delta) / (2 p D))``. The extra
data is ``N - D`` (all ``N`` when no dataset is given), costed per sample when a cost is given
and in training time and model flops per epoch on a given run.
Left out: the privacy accounting itself (epsilon from sigma, sampling rate and steps: use an
accountant), memory of per-example gradients (Book-Keeping and ghost clipping stay near the
non-private memory, per-sample hooks do not), changes to the DP overlap when the backward
grows, utility; for subgroups, bounds tighter than Hoeffding's (Bernstein, exact binomial) and
sampling without replacement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, PositiveFloat

from ..core import validate as check
from ..core.contract import ForwardModel, Option, Result
from ..errors import DataFileError, UnknownNameError, ValidationError
from ..specs.base import Sourced
from ..units import Q_
from .efficiency import training_run

__all__ = ["ResponsibleEngineeringModel", "ResponsibleResult", "DPClipping", "DPCost",
           "SubgroupData", "clipping_methods", "clipping_factor", "hoeffding_samples"]

OWNER = "ResponsibleEngineeringModel"
NONPRIVATE = "nonprivate"
BACKWARD_SHARE = 2.0 / 3.0       # backward flops / (forward + backward): 4N of 6N per token


# --- the sourced data -----------------------------------------------------------------------
class DPClipping(Sourced):
    """One published comparison of step times: a step of this clipping method takes ``time``
    where a step of ``reference`` (non-private training or another entry) takes
    ``reference_time`` (an entry of ``zoo/data/responsible.yaml``)."""

    key: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    name: str
    time: PositiveFloat
    reference_time: PositiveFloat
    reference: str


@lru_cache(maxsize=1)
def clipping_methods() -> dict[str, DPClipping]:
    """The entries of ``zoo/data/responsible.yaml`` by key (read once).

    >>> sorted(clipping_methods())
    ['book_keeping', 'ghost_clipping', 'per_sample_hooks']
    """
    from ..zoo import DATA, _read_yaml

    path = DATA / "responsible.yaml"
    out: dict[str, DPClipping] = {}
    for i, raw in enumerate(_read_yaml(path)):
        key = raw.get("key", f"#{i + 1}") if isinstance(raw, dict) else f"#{i + 1}"
        entry = DPClipping.from_dict(raw, f"{path.name} entry {key}")
        if entry.key in out or entry.key == NONPRIVATE:
            raise DataFileError(f"{path.name}: duplicate or reserved key '{entry.key}'")
        out[entry.key] = entry
    for e in out.values():
        if e.reference != NONPRIVATE and e.reference not in out:
            raise DataFileError(f"{path.name} entry {e.key}: reference '{e.reference}' is "
                                f"neither '{NONPRIVATE}' nor an entry")
    return out


def clipping_factor(key: str) -> tuple[float, str]:
    """(step time / non-private step time, the chain of sources) of a clipping method.

    >>> round(clipping_factor("book_keeping")[0], 4)      # 1 / 0.83
    1.2048
    >>> round(clipping_factor("ghost_clipping")[0], 4)    # 1.36 / 0.83
    1.6386
    """
    methods = clipping_methods()
    if key not in methods:
        raise UnknownNameError("clipping method", key, methods)
    factor, seen, chain = 1.0, set(), []
    while key != NONPRIVATE:
        if key in seen:
            raise DataFileError(f"responsible.yaml: reference cycle through '{key}'")
        seen.add(key)
        e = methods[key]
        factor *= e.time / e.reference_time
        chain.append(f"{e.key} {e.time:g}:{e.reference_time:g} vs {e.reference}")
        key = e.reference
    return factor, "; ".join(chain)


def hoeffding_samples(margin: float, confidence: float, metric_range: float = 1.0) -> int:
    """Samples that put a bounded metric's average within ``+-margin`` of its mean with
    probability ``confidence``: ``ceil(R^2 ln(2 / delta) / (2 margin^2))`` (module docstring).

    >>> hoeffding_samples(0.05, 0.95)          # ln(40) / (2 x 0.05^2) = 737.8
    738
    """
    delta = 1.0 - confidence
    return math.ceil(metric_range ** 2 * math.log(2.0 / delta) / (2.0 * margin ** 2)
                     * (1 - 1e-12))


# --- the parts of a result ------------------------------------------------------------------
@dataclass(frozen=True)
class DPCost:
    """The private run's step next to the non-private one (SI seconds)."""

    method: str                   # the clipping method's key, or "given"
    source: str
    factor: float                 # F: whole-step time factor
    batch_multiplier: float       # M
    step_s: float
    private_step_s: float         # same batch
    private_batch_step_s: float   # M x the batch
    tokens_per_step: float        # of the non-private run
    devices: int
    noise_multiplier: float | None
    token_budget: float | None

    @property
    def backward_multiplier(self) -> float:
        """k = 1 + (F - 1) / (backward share 2/3) = 1 + 1.5 (F - 1)."""
        return 1.0 + (self.factor - 1.0) / BACKWARD_SHARE

    @property
    def compute_multiplier(self) -> float:
        """Cost of the private run over the non-private one for the same steps."""
        return self.private_batch_step_s / self.step_s

    @property
    def steps(self) -> float | None:
        return None if self.token_budget is None else self.token_budget / self.tokens_per_step

    @property
    def time_s(self) -> float | None:
        return None if self.steps is None else self.steps * self.step_s

    @property
    def private_time_s(self) -> float | None:
        return None if self.steps is None else self.steps * self.private_batch_step_s

    def noise_std(self, batch: float) -> float | None:
        """sigma / B: the noise std of the averaged gradient, in units of the clip norm."""
        return None if self.noise_multiplier is None else self.noise_multiplier / batch


@dataclass(frozen=True)
class SubgroupData:
    """Samples to certify a subgroup's metric (module docstring)."""

    margin: float
    confidence: float
    metric_range: float
    fraction: float
    subgroup_samples: int          # n
    total_samples: int             # N = ceil(n / p)
    dataset_size: int | None
    cost_per_sample: Any           # a quantity, or None
    seconds_per_sample: float | None   # on the run's fleet, one pass
    flops_per_sample: float | None     # the run's model flops per sample

    @property
    def delta(self) -> float:
        return 1.0 - self.confidence

    @property
    def extra_samples(self) -> int:
        if self.dataset_size is None:
            return self.total_samples
        return max(0, self.total_samples - self.dataset_size)

    @property
    def enough(self) -> bool:
        return self.dataset_size is None or self.dataset_size >= self.total_samples

    @property
    def achievable_margin(self) -> float | None:
        """eps the given dataset certifies: R sqrt(ln(2/delta) / (2 p D))."""
        if self.dataset_size is None:
            return None
        return self.metric_range * math.sqrt(math.log(2.0 / self.delta)
                                             / (2.0 * self.fraction * self.dataset_size))

    @property
    def extra_cost(self):
        return None if self.cost_per_sample is None else self.cost_per_sample * \
            self.extra_samples


@dataclass(frozen=True, eq=False, repr=False)
class ResponsibleResult(Result):
    """The compute cost of private training and the data a subgroup needs."""

    run: Any                     # DistributedResult or None
    dp: DPCost | None
    subgroup: SubgroupData | None

    main_latency = None
    summary_inputs = ()
    summary_numbers = ("dp_slowdown:private x", "subgroup_samples:n",
                       "total_samples:N")

    @property
    def dp_slowdown(self) -> float | None:
        return None if self.dp is None else self.dp.compute_multiplier

    @property
    def subgroup_samples(self) -> int | None:
        return None if self.subgroup is None else self.subgroup.subgroup_samples

    @property
    def total_samples(self) -> int | None:
        return None if self.subgroup is None else self.subgroup.total_samples

    @property
    def feasible(self) -> bool:
        return (self.run is None or bool(self.run.feasible)) and \
            (self.subgroup is None or self.subgroup.enough)

    @property
    def reason(self) -> str | None:
        why = []
        if self.run is not None and not self.run.feasible:
            why.append(f"the run does not fit: {self.run.reason}")
        g = self.subgroup
        if g is not None and not g.enough:
            why.append(f"the dataset of {g.dataset_size:,} holds about "
                       f"{g.fraction * g.dataset_size:,.0f} subgroup samples; +-{g.margin:g} "
                       f"at {g.confidence:.0%} needs {g.subgroup_samples:,} "
                       f"({g.total_samples:,} in all), the data certifies +-"
                       f"{g.achievable_margin:.3g}")
        return "; ".join(why) or None

    @property
    def binding(self) -> str:
        if self.run is not None and not self.run.feasible:
            return "memory capacity"
        if self.subgroup is not None and not self.subgroup.enough:
            return "subgroup data"
        return "per-example clipping" if self.dp is not None else "subgroup samples"

    @property
    def assumptions(self) -> tuple[str, ...]:
        out = []
        if self.dp is not None:
            out += [f"DP-SGD step factor {self.dp.factor:.4g} ({self.dp.source})",
                    "clipping slows the micro-batch compute only: collectives, the optimizer "
                    "and the DP reduction keep their time",
                    "a larger private batch is more micro-batches of the same size"]
        if self.subgroup is not None:
            out += ["independent samples of a metric bounded in a range of "
                    f"{self.subgroup.metric_range:g} (Hoeffding)",
                    "the subgroup's share of a sample is its expected count, N p"]
        return tuple(out)

    def headline(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        d = self.dp
        if d is not None:
            r = self.run
            out.update({
                "model": r.model.name, "system": getattr(r.system, "name", str(r.system)),
                "clipping": d.method, "step_factor": d.factor,
                "backward_multiplier": d.backward_multiplier,
                "batch_multiplier": d.batch_multiplier,
                "step": Q_(d.step_s, "s").to("ms"),
                "private_step": Q_(d.private_step_s, "s").to("ms"),
                "private_batch_step": Q_(d.private_batch_step_s, "s").to("ms"),
                "compute_multiplier": d.compute_multiplier,
                "noise_std_over_clip": d.noise_std(d.batch_multiplier * r.batch_size),
                "time_to_train": None if d.time_s is None else Q_(d.time_s, "s").to("h"),
                "private_time_to_train": None if d.private_time_s is None else
                Q_(d.private_time_s, "s").to("h"),
                "extra_gpu_hours": None if d.time_s is None else
                (d.private_time_s - d.time_s) * d.devices / 3600})
        g = self.subgroup
        if g is not None:
            out.update({
                "margin": g.margin, "confidence": g.confidence, "subgroup_fraction": g.fraction,
                "subgroup_samples": g.subgroup_samples, "total_samples": g.total_samples,
                "dataset_size": g.dataset_size, "extra_samples": g.extra_samples,
                "achievable_margin": g.achievable_margin, "extra_cost": g.extra_cost,
                "extra_epoch_time": None if g.seconds_per_sample is None else
                Q_(g.seconds_per_sample * g.extra_samples, "s").to("h"),
                "extra_epoch_flops": None if g.flops_per_sample is None else
                Q_(g.flops_per_sample * g.extra_samples, "flop")})
        out.update({"feasible": self.feasible, "reason": self.reason})
        return out

    def explain(self) -> str:
        lines = []
        d = self.dp
        if d is not None:
            r = self.run
            m = r.microbatch_count
            comm = r.tp_comm_s + r.ep_comm_s + r.pp_comm_s + r.zero3_exposed_s
            lines += [
                f"DP-SGD on {r.model.name}, {r.devices} x {r.hardware.name}, clipping "
                f"{d.method}: step factor F = {d.factor:.4g} ({d.source}); backward x "
                f"k = 1 + 1.5 (F - 1) = {d.backward_multiplier:.4g}",
                f"  t_mb' = F (t_mb - t_comm) + t_comm = {d.factor:.4g} x "
                f"({r.compute_s / m * 1e3:.4g} - {comm / m * 1e3:.4g}) ms + "
                f"{comm / m * 1e3:.4g} ms",
                f"  step' (batch x {d.batch_multiplier:g} = {d.batch_multiplier * m:g} "
                f"micro-batches) = {d.private_batch_step_s * 1e3:.4g} ms vs "
                f"{d.step_s * 1e3:.4g} ms (same batch: {d.private_step_s * 1e3:.4g} ms): "
                f"x {d.compute_multiplier:.4g} for the same steps",
            ]
            if d.noise_multiplier is not None:
                b = d.batch_multiplier * r.batch_size
                lines.append(f"  noise std of the mean gradient = sigma C / B = "
                             f"{d.noise_multiplier:g} C / {b:g} = {d.noise_std(b):.3g} C")
            if d.time_s is not None:
                lines.append(f"  {d.token_budget:.4g} tokens in {d.steps:.4g} steps: "
                             f"{d.time_s / 3600:.4g} h -> {d.private_time_s / 3600:.4g} h")
        g = self.subgroup
        if g is not None:
            lines += [
                f"Subgroup metric within +-{g.margin:g} at {g.confidence:.0%} (Hoeffding): "
                f"n = ceil({g.metric_range:g}^2 ln(2 / {g.delta:.3g}) / (2 x {g.margin:g}^2)) "
                f"= {g.subgroup_samples:,}",
                f"  a subgroup of p = {g.fraction:g}: N = ceil(n / p) = {g.total_samples:,} "
                "samples in all",
            ]
            if g.dataset_size is not None:
                lines.append(f"  dataset {g.dataset_size:,}: extra {g.extra_samples:,}; it "
                             f"certifies +-{g.achievable_margin:.3g}")
            if g.extra_cost is not None:
                lines.append(f"  extra cost = {g.extra_samples:,} x {g.cost_per_sample:~P} = "
                             f"{g.extra_cost:.4g~P}")
            if g.seconds_per_sample is not None:
                lines.append(f"  one more epoch over them: {g.extra_samples:,} x "
                             f"{g.seconds_per_sample * 1e3:.4g} ms = "
                             f"{g.seconds_per_sample * g.extra_samples / 3600:.4g} h")
        if not self.feasible:
            lines.append(f"  infeasible: {self.reason}")
        return "\n".join(lines)


# --- the solver -----------------------------------------------------------------------------
def _quantity(name: str, value):
    """A cost with units: a quantity or a string ('0.02 USD', '3 ms', '2e12 flop')."""
    try:
        q = Q_(value) if isinstance(value, str) else value
    except Exception:
        q = None
    if not isinstance(q, Q_) or not math.isfinite(float(q.magnitude)) or q.magnitude < 0:
        raise ValidationError(name, "must be a non-negative quantity with units, e.g. '0.02 "
                              f"USD', '3 ms' or '2e12 flop'. Got {value!r} instead.",
                              owner=OWNER)
    return q


def _dp_cost(r, clipping, dp_slowdown, batch_multiplier, noise_multiplier) -> DPCost:
    if (clipping is None) == (dp_slowdown is None):
        raise ValidationError("clipping", "or dp_slowdown (one of them) gives the cost of "
                              f"per-example clipping: choose one of "
                              f"{', '.join(clipping_methods())}, or give a measured step "
                              "factor.", owner=OWNER)
    if clipping is not None:
        if not isinstance(clipping, str):
            raise ValidationError("clipping", "must be a method name. Got "
                                  f"{clipping!r} instead.", owner=OWNER)
        factor, source = clipping_factor(clipping)
        method = clipping
    else:
        factor = check.positive_float("dp_slowdown", dp_slowdown, OWNER)
        if factor < 1:
            raise ValidationError("dp_slowdown", "must be at least 1 (a private step is never "
                                  f"faster). Got {dp_slowdown!r} instead.", owner=OWNER)
        method, source = "given", "given"
    mult = check.positive_float("batch_multiplier", batch_multiplier, OWNER)
    if mult < 1:
        raise ValidationError("batch_multiplier", "must be at least 1 (the private batch over "
                              f"the run's). Got {batch_multiplier!r} instead.", owner=OWNER)
    sigma = None if noise_multiplier is None else \
        check.positive_float("noise_multiplier", noise_multiplier, OWNER)
    m = r.microbatch_count
    t_mb = r.compute_s / m
    # Communication in the micro-batches is not slowed by clipping (ZeRO-3: its exposed part).
    comm_mb = (r.tp_comm_s + r.ep_comm_s + r.pp_comm_s + r.zero3_exposed_s) / m
    t_mb_p = factor * (t_mb - comm_mb) + comm_mb
    bubble_p = r.bubble_s * t_mb_p / t_mb if t_mb > 0 else 0.0
    rest = r.optimizer_s + r.dp_exposed_s
    return DPCost(method=method, source=source, factor=factor, batch_multiplier=mult,
                  step_s=r.step_s, private_step_s=m * t_mb_p + bubble_p + rest,
                  private_batch_step_s=mult * m * t_mb_p + bubble_p + rest,
                  tokens_per_step=float(r.batch_size * r.seq_len), devices=r.devices,
                  noise_multiplier=sigma, token_budget=r.token_budget)


def _subgroup(r, margin, confidence, subgroup_fraction, metric_range, dataset_size,
              cost_per_sample) -> SubgroupData:
    eps = check.positive_float("margin", margin, OWNER)
    conf = check.fraction("confidence", confidence, OWNER)
    if conf in (0.0, 1.0):
        raise ValidationError("confidence", "must be strictly between 0 and 1 (1 needs "
                              f"infinitely many samples). Got {confidence!r} instead.",
                              owner=OWNER)
    p = check.fraction("subgroup_fraction", subgroup_fraction, OWNER)
    if p == 0:
        raise ValidationError("subgroup_fraction", "must be above 0. Got 0 instead.",
                              owner=OWNER)
    rng = check.positive_float("metric_range", metric_range, OWNER)
    if eps >= rng:
        raise ValidationError("margin", f"must be below the metric's range (={rng:g}). Got "
                              f"{margin!r} instead.", owner=OWNER)
    size = None if dataset_size is None else \
        check.positive_int("dataset_size", dataset_size, OWNER)
    cost = None if cost_per_sample is None else _quantity("cost_per_sample", cost_per_sample)
    n = hoeffding_samples(eps, conf, rng)
    total = math.ceil(n / p * (1 - 1e-12))
    sec = flops = None
    if r is not None:
        sec, flops = r.step_s / r.batch_size, r.model_flops / r.batch_size
    return SubgroupData(margin=eps, confidence=conf, metric_range=rng, fraction=p,
                        subgroup_samples=n, total_samples=total, dataset_size=size,
                        cost_per_sample=cost, seconds_per_sample=sec, flops_per_sample=flops)


class ResponsibleEngineeringModel(ForwardModel):
    """The compute of private training and the data of subgroup evaluation (module
    docstring)."""

    options = (
        Option("run", None, "the non-private training step: a DistributedResult"),
        Option("model", None, "instead of run: model, with fleet and config"),
        Option("fleet", None, "instead of run: chip, node or fleet, with model and config"),
        Option("config", None, "instead of run: a DistributedConfig, with model and fleet"),
        Option("clipping", None, "DP-SGD clipping method, a key of zoo/data/responsible.yaml"),
        Option("dp_slowdown", None, "instead of clipping: a measured step-time factor (>= 1)"),
        Option("batch_multiplier", 1.0, "private batch / the run's batch, same steps (>= 1)"),
        Option("noise_multiplier", None, "DP-SGD sigma: noise std is sigma x clip norm"),
        Option("margin", None, "+- of the subgroup metric to certify (in its units)"),
        Option("confidence", 0.95, "probability 1 - delta that the metric is within margin"),
        Option("subgroup_fraction", 1.0, "the subgroup's share p of the data (0, 1]"),
        Option("metric_range", 1.0, "range of one sample's metric value (1 for a rate)"),
        Option("dataset_size", None, "samples at hand (extra data and achievable margin)"),
        Option("cost_per_sample", None, "cost of one more sample, with units ('0.02 USD')"),
    )

    @classmethod
    def example(cls, feasible: bool = True) -> dict[str, Any]:
        """Llama-3-8B on one DGX H100 trained privately with ghost clipping at 4x the batch,
        and a subgroup of 1 % evaluated to +-0.05 at 95 %; the infeasible one has a dataset of
        50,000 samples (500 of the subgroup, 738 needed)."""
        from ..specs.configs import DistributedConfig
        kw = dict(model="Llama3_8B", fleet="DGX_H100",
                  config=DistributedConfig(batch_size=64, seq_len=2048, zero_stage=1,
                                           token_budget=1e9),
                  clipping="ghost_clipping", batch_multiplier=4, noise_multiplier=1.0,
                  margin=0.05, confidence=0.95, subgroup_fraction=0.01,
                  cost_per_sample="0.02 USD")
        if not feasible:
            kw["dataset_size"] = 50_000
        return kw

    def solve(self, run=None, model=None, fleet=None, config=None, clipping=None,
              dp_slowdown=None, batch_multiplier: float = 1.0, noise_multiplier=None,
              margin=None, confidence: float = 0.95, subgroup_fraction: float = 1.0,
              metric_range: float = 1.0, dataset_size=None,
              cost_per_sample=None) -> ResponsibleResult:
        """The cost of DP-SGD on a training step, and the samples a subgroup metric needs
        (module docstring). Give a run (or model, fleet and config) for the first, a margin
        for the second, or both.

        Parameters
        ----------
        run, model, fleet, config
            The non-private training step (DistributedResult), or what DistributedModel
            solves for it.
        clipping : str, optional
            ``book_keeping``, ``ghost_clipping`` or ``per_sample_hooks`` (measured factors).
        dp_slowdown : float, optional
            A step-time factor of your own instead of ``clipping``.
        batch_multiplier : float
            The private run's batch over the run's, for the same number of steps (>= 1).
        noise_multiplier : float, optional
            sigma; reports the noise std of the averaged gradient, sigma / B clip norms.
        margin : float, optional
            Half-width of the subgroup metric's interval (0.05 = +-5 points of accuracy).
        confidence : float
            1 - delta, strictly between 0 and 1.
        subgroup_fraction : float
            The subgroup's share of the data, in (0, 1].
        metric_range : float
            Range of one sample's metric value (1 for accuracy, error or any rate).
        dataset_size : int, optional
            Samples already at hand: extra data needed and the margin they certify.
        cost_per_sample : quantity or str, optional
            Cost of one more sample ('0.02 USD', '3 ms', '2e12 flop').

        Returns
        -------
        ResponsibleResult
            ``dp`` (step factor, backward multiplier, private step times in s, compute
            multiplier for the same steps) and ``subgroup`` (n, N, extra samples and cost).

        Examples
        --------
        >>> import mlsysim
        >>> r = mlsysim.ResponsibleEngineeringModel().solve(margin=0.05, confidence=0.95,
        ...                                                 subgroup_fraction=0.01)
        >>> r.subgroup_samples, r.total_samples     # ln(40) / 0.005 = 737.8 -> 738; / 0.01
        (738, 73800)
        """
        r = training_run(run, model, fleet, config, OWNER)
        dp_given = {"clipping": clipping, "dp_slowdown": dp_slowdown,
                    "noise_multiplier": noise_multiplier,
                    "batch_multiplier": None if batch_multiplier == 1.0 else batch_multiplier}
        dp = None
        if r is not None:
            dp = _dp_cost(r, clipping, dp_slowdown, batch_multiplier, noise_multiplier)
        else:
            stray = [k for k, v in dp_given.items() if v is not None]
            if stray:
                raise ValidationError(stray[0], "needs a training run (run, or model, fleet "
                                      "and config) to cost.", owner=OWNER)
        sub = None
        if margin is not None:
            sub = _subgroup(r, margin, confidence, subgroup_fraction, metric_range,
                            dataset_size, cost_per_sample)
        else:
            given = {"dataset_size": dataset_size, "cost_per_sample": cost_per_sample,
                     "subgroup_fraction": None if subgroup_fraction == 1.0 else 1}
            stray = [k for k, v in given.items() if v is not None]
            if stray:
                raise ValidationError("margin", f"is needed with {stray[0]}: the +- to "
                                      "certify the subgroup's metric within.", owner=OWNER)
        if dp is None and sub is None:
            raise ValidationError("margin", "or a training run is needed: give margin (data "
                                  "for a subgroup metric), run (the cost of private training), "
                                  "or both.", owner=OWNER)
        return ResponsibleResult(run=r, dp=dp, subgroup=sub)
