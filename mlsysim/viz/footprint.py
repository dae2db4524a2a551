"""Footprint plots: where a job's energy and carbon come from. matplotlib is imported here
only, when a plot is made."""

from __future__ import annotations

__all__ = ["plot_footprint", "footprint_parts"]


def footprint_parts(result) -> tuple[dict[str, float], dict[str, float]]:
    """(energy kWh by component, carbon kgCO2e by kind) of a SustainabilityResult or
    EconomicsResult: accelerators (``N x P_acc x T``), hosts, facility overhead
    (``IT x (PUE - 1)``); operational (facility energy x grid intensity) and embodied (left
    out when no embodied carbon is published for the device).

    >>> import mlsysim
    >>> r = mlsysim.SustainabilityModel().solve("DGX_H100", duration_days=1,
    ...                                         datacenter="Hyperscale", grid="Quebec", mfu=0.4)
    >>> energy, carbon = footprint_parts(r)
    >>> abs(sum(energy.values()) - r.total_energy_kwh) < 1e-9
    True
    """
    from ..errors import ValidationError
    fp = getattr(result, "fp", None)
    if fp is None or not hasattr(fp, "facility_kwh"):
        raise ValidationError("result", "must be a SustainabilityResult or EconomicsResult. Got "
                              f"{type(result).__name__} instead.", owner="plot_footprint")
    hours = fp.seconds / 3600.0
    energy = {"accelerators": fp.accelerators * fp.accelerator_w * hours / 1000.0,
              "hosts": fp.host_w * hours / 1000.0,
              "facility overhead (PUE)": fp.it_kwh * (fp.pue - 1.0)}
    carbon = {"operational": fp.carbon_kg}
    if fp.embodied_kg is not None:
        carbon["embodied"] = fp.embodied_kg
    return energy, carbon


def plot_footprint(result, *, axes=None):
    """Two stacked bars: the job's facility energy by component (accelerators, hosts,
    facility overhead from PUE) in kWh, and its carbon (operational, embodied) in kgCO2e.

    ``result`` is a SustainabilityResult or EconomicsResult; ``axes`` optionally a pair of
    matplotlib axes to draw into. Each segment's height is the result's number
    (:func:`footprint_parts`). Returns ``(fig, ax)`` with ``ax`` the pair (energy, carbon).
    """
    import textwrap

    import matplotlib.pyplot as plt

    energy, carbon = footprint_parts(result)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 4.5))
    else:
        fig = axes[0].figure
    ax_e, ax_c = axes[0], axes[1]
    colors = {"accelerators": "tab:green", "hosts": "tab:olive",
              "facility overhead (PUE)": "tab:gray", "operational": "tab:red",
              "embodied": "tab:brown"}
    for ax, parts, unit in ((ax_e, energy, "kWh"), (ax_c, carbon, "kgCO2e")):
        bottom = 0.0
        for name, value in parts.items():
            ax.bar([0], [value], bottom=bottom, width=0.5, color=colors[name],
                   label=f"{name}: {value:,.4g} {unit}")
            bottom += value
        ax.set_xticks([0])
        ax.set_xlim(-0.75, 0.75)
        if bottom > 0:
            ax.set_ylim(0, bottom * (1.15 + 0.08 * len(parts)))   # room for the legend
        ax.set_ylabel(unit)
        ax.legend(fontsize=8, loc="upper right")
    ax_e.set_xticklabels(["energy"])
    ax_c.set_xticklabels(["carbon"])
    fp = result.fp
    if fp.embodied_kg is None:
        ax_c.set_title("embodied carbon unknown:\n" + textwrap.fill(
            fp.embodied_reason.split(";")[0], 50), fontsize=7)
    system = getattr(result.system, "name", str(result.system))
    fig.suptitle(f"Footprint: {system}, {fp.seconds / 86400:.4g} days, PUE {fp.pue:g}\n"
                 + textwrap.shorten(result.region_name, 70), fontsize=10)
    fig.tight_layout()
    return fig, axes
