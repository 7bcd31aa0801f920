"""Loading instances and plan files: the envelope (`schema`, `family`, ...) dispatches on `family`
to that family's schemas; every problem comes back at once with its JSON path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .errors import InstanceError, Problem, problems_from, short
from .family import FamilyError, get_family, implemented
from .files import read_json
from .result import OLD_PLAN_SCHEMAS, PLAN_SCHEMA, Result
from .schema import SCHEMA_ID, InstanceBase


def instance_from_dict(data: Any, source: str | None = None) -> InstanceBase:
    """Validate a parsed JSON object as an instance of its family; InstanceError listing every
    problem."""
    if not isinstance(data, dict):
        raise InstanceError([Problem("$", "a JSON object", type(data).__name__)], source)
    schema = data.get("schema")
    if schema != SCHEMA_ID:
        raise InstanceError([Problem("$.schema", f"'{SCHEMA_ID}'", short(schema))], source)
    if "family" not in data:
        raise InstanceError([Problem("$.family", f"one of {implemented()} (required field)",
                                     "nothing")], source)
    family = _family(data["family"], source)
    try:
        return family.instance_model.model_validate(data)
    except ValidationError as err:
        raise InstanceError(problems_from(err), source) from None


def _family(name: Any, source: str | None) -> Any:
    """The family an input names at ``$.family``; InstanceError otherwise."""
    try:
        if not isinstance(name, str):
            raise FamilyError(f"one of {implemented()}")
        return get_family(name)
    except FamilyError as exc:
        expected = str(exc).partition("; got ")[0]
        raise InstanceError([Problem("$.family", expected, short(name))], source) from None


def load_instance(source: str | Path | dict[str, Any]) -> InstanceBase:
    """Load an instance from a JSON file path or an already parsed dict."""
    if isinstance(source, dict):
        return instance_from_dict(source)
    path = Path(source)
    return instance_from_dict(read_json(path), str(path))


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _union_schema(models: list[Any], discriminator: str = "family") -> dict[str, Any]:
    """The JSON Schema of one model, or of one of several told apart by ``discriminator``."""
    if len(models) == 1:
        return models[0].model_json_schema(by_alias=True)
    from typing import Annotated, Union

    from pydantic import Field

    union = Annotated[Union[tuple(models)], Field(discriminator=discriminator)]  # noqa: UP007
    return TypeAdapter(union).json_schema(by_alias=True)


def json_schema(family: str | None = None) -> dict[str, Any]:
    """JSON Schema of the instance format (`sftopt schema`): of one family, or of every
    implemented family (one of them, told apart by `family`). It accepts what `load_instance`
    accepts, a model named by a string included; it rejects what the loader rejects where JSON
    Schema can say it (types, ranges, required and unknown fields), but not the checks across
    fields (cut ranges against L, unique ids, codec levels against max_distortion, ...)."""
    models = [get_family(f).instance_model for f in ([family] if family else implemented())]
    schema = _union_schema(models)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_ID, "title": "sftopt instance",
            "description": "An sftopt instance (docs/model.md); ranges: docs/model.md, "
                           "'Valid ranges'.", **schema}


def plan_json_schema(family: str | None = None) -> dict[str, Any]:
    """JSON Schema of plan files (`sftopt.plan/2`, docs/model.md section 6): the result
    envelope with the family's plan and simulation, of one family or of every implemented one
    (told apart by `family`). Files of the old format (`sftopt.plan/1`) are not described."""
    from typing import Literal

    from pydantic import Field, create_model

    models = []
    for name in [family] if family else implemented():
        fam = get_family(name)
        sim = fam.simulation_model
        models.append(create_model(
            f"{name.capitalize()}PlanFile", __base__=Result,
            __doc__=f"A plan file of family `{name}`.",
            family=(Literal[name], Field(description="the problem family")),
            plan=(fam.plan_model | None, Field(None, description="the family's plan (null: the "
                                                                 "solve found none)")),
            simulation=((sim | None, Field(None, description="the family's simulation of the "
                                                             "plan, if run"))
                        if sim is not None else
                        (None, Field(None, description="none: the family has no simulation")))))
    schema = _union_schema(models)
    for d in [schema, *schema.get("$defs", {}).values()]:
        if d.get("title", "").endswith("PlanFile"):
            d["required"] = sorted({"schema", "family", "instance", *d.get("required", [])})
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": PLAN_SCHEMA, "title": "sftopt plan file",
            "description": "A plan file (docs/model.md section 6).", **schema}


def load_plan(source: str | Path | dict[str, Any]) -> Result:
    """Load a plan file (from sftopt or another tool), `sftopt.plan/2` or `/1`.

    InstanceError with JSON paths if it is malformed; the plan and simulation blocks are
    validated by the family's schemas.
    """
    name = None if isinstance(source, dict) else str(source)
    data = source if isinstance(source, dict) else read_json(Path(source))
    if not isinstance(data, dict):
        raise InstanceError([Problem("$", "a JSON object", type(data).__name__)], name)
    schema = data.get("schema")
    if schema != PLAN_SCHEMA and schema not in OLD_PLAN_SCHEMAS:
        known = ", ".join(f"'{s}'" for s in (PLAN_SCHEMA, *OLD_PLAN_SCHEMAS))
        raise InstanceError([Problem("$.schema", f"one of {known}", short(schema))], name)
    old = schema in OLD_PLAN_SCHEMAS
    if not old and "family" not in data:
        raise InstanceError([Problem("$.family", f"one of {implemented()} (required field)",
                                     "nothing")], name)
    family = _family(data.get("family", "split"), name)
    # a /1 file held the plan's fields at the top under older names: its errors name the
    # fields as the user wrote them
    prefix: tuple[Any, ...] = ("plan",)
    renamed: dict[str, str] = {}
    if old:
        (data, renamed), prefix = family.upgrade_plan(data), ()
    problems: list[Problem] = []
    envelope = None
    try:
        envelope = Result.model_validate({**data, "plan": None, "simulation": None})
    except ValidationError as err:
        problems += [_renamed(p, renamed) for p in problems_from(err)]
    parts: dict[str, Any] = {}
    for key, model, pre in (("plan", family.plan_model, prefix),
                            ("simulation", family.simulation_model, ("simulation",))):
        value = data.get(key)
        if value is None or model is None:
            parts[key] = value
            continue
        try:
            parts[key] = model.model_validate(value, strict=True)  # no "0" for 0 in a file
        except ValidationError as err:
            problems += problems_from(err, pre)
    if not problems and (parts["plan"] is None) != (envelope.status == "none"):
        problems.append(Problem("$.status", "'none' exactly when the file holds no plan",
                                f"{envelope.status.value!r} with "
                                f"{'no plan' if parts['plan'] is None else 'a plan'}"))
    if problems or envelope is None:
        raise InstanceError(problems, name)
    return envelope.model_copy(update=parts)


def _renamed(problem: Problem, renamed: dict[str, str]) -> Problem:
    """A problem at a field an upgrade renamed, addressed by the field's old name."""
    head, dot, rest = problem.path.removeprefix("$.").partition(".")
    if head not in renamed:
        return problem
    return Problem(f"$.{renamed[head]}{dot}{rest}", problem.expected, problem.got)
