"""Certification: every plan gets the best certified lower bound known for it, and its gap.

One function for the command line, the benchmarks and library users alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .family import get_family
from .result import Result
from .schema import InstanceBase


def certify(instance: InstanceBase, results: Sequence[Result], method: str | None = None, *,
            bounds: Mapping[str, float] | None = None) -> list[Result]:
    """``results`` (plans of ``instance``), each with the best certified bound known and its gap.

    A bound holds for every plan of a class (the family's ``plan_class``: for `split`, the
    parallel or the sequential schedule), so each plan gets the largest of the family's
    ``method`` bound for its class (default: the family's first bound method; "none": no
    extra bound) and every bound a result of the same class already carries (an exact
    solver's dual bound certifies a heuristic's gap). ``bounds`` adds bounds already known
    per class (e.g. computed and timed by a benchmark). The ``method`` bound is not computed
    again for a class in which a result carries it (``Result.bound_methods``, with a ``bound``:
    a solver that computed that very bound, complete, in this process, or an earlier certify):
    its ``bound`` is at least that bound. Results without a plan are returned as they are.
    """
    family = get_family(instance.family)
    method = family.bound_methods[0] if method is None else method
    if method != "none" and method not in family.bound_methods:
        raise ValueError(f"bound method must be one of {[*family.bound_methods, 'none']}, "
                         f"got {method!r}")
    out = list(results)
    classes: dict[str, list[int]] = {}
    for i, res in enumerate(out):
        if res.instance_sha256 not in (None, instance.sha256):
            raise ValueError(f"result of {res.solver!r} is for instance {res.instance!r} with "
                             f"another hash than {instance.name!r}")
        if res.objective is not None:
            classes.setdefault(family.plan_class(res), []).append(i)
    for cls, idx in classes.items():
        known = [out[i].bound for i in idx if out[i].bound is not None]
        if bounds and cls in bounds:
            known.append(bounds[cls])
        have = method == "none" or any(method in out[i].bound_methods and out[i].bound is not None
                                       for i in idx)
        if not have:
            known.append(family.lower_bound(instance, method, cls))
        known = [b for b in known if math.isfinite(b)]
        if known:
            best = max(known)
            for i in idx:
                out[i] = out[i].with_bound(best)
        if method != "none":  # every result of the class now has at least the method's bound
            for i in idx:
                out[i] = out[i].with_methods(method)
    return out
