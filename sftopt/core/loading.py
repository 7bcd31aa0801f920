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


def _resolve_model(data: dict[str, Any], source: str | None) -> dict[str, Any]:
    """Replace a model named by string with the profile from models/."""
    model = data.get("model")
    if not isinstance(model, str):
        return data
    from .. import profiles  # profiles are shared data, below every family

    try:
        profile = profiles.load_profile(model)
    except (FileNotFoundError, ValueError) as exc:
        raise InstanceError([Problem("$.model", "the name of a profile in models/", str(exc))],
                            source) from None
    return {**data, "model": profile}


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
    try:
        family = get_family(data["family"])
    except FamilyError as exc:
        expected, _, _ = str(exc).partition("; got ")
        raise InstanceError([Problem("$.family", expected, short(data["family"]))],
                            source) from None
    data = _resolve_model(data, source)
    try:
        return family.instance_model.model_validate(data)
    except ValidationError as err:
        raise InstanceError(problems_from(err), source) from None


def load_instance(source: str | Path | dict[str, Any]) -> InstanceBase:
    """Load an instance from a JSON file path or an already parsed dict."""
    if isinstance(source, dict):
        return instance_from_dict(source)
    path = Path(source)
    return instance_from_dict(read_json(path), str(path))


def json_schema(family: str | None = None) -> dict[str, Any]:
    """JSON Schema of the instance format (`sftopt schema`): of one family, or of every
    implemented family (one of them, told apart by `family`)."""
    models = [get_family(f).instance_model for f in ([family] if family else implemented())]
    if len(models) == 1:
        schema = models[0].model_json_schema(by_alias=True)
    else:
        from typing import Annotated, Union

        from pydantic import Field

        union = Annotated[Union[tuple(models)], Field(discriminator="family")]  # noqa: UP007
        schema = TypeAdapter(union).json_schema(by_alias=True)
    schema["$id"] = SCHEMA_ID
    schema["title"] = "sftopt instance"
    return schema


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
    try:
        family = get_family(data.get("family", "split"))
    except FamilyError as exc:
        raise InstanceError([Problem("$.family", str(exc).partition("; got ")[0],
                                     short(data.get("family")))], name) from None
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
            parts[key] = model.model_validate(value)
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
