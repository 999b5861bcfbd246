"""Experiments (A/B tests): a definition, a stable assignment, and results against control.

An experiment names an audience, variants with ratios (one of them the control group),
a touch date, an attribution window and the metrics to read::

    definition = ExperimentDefinition(
        name="double11_coupon", audience="lifecycle_stage = 'active'",
        variants=[Variant(name="coupon", ratio=0.9), Variant(name="control", ratio=0.1)],
        touch_date="2026-10-17", window_days=7)
    create_experiment("shop", definition)
    assign("shop", "double11_coupon")          # the audience engine's salted split
    result = experiment_results("shop", "double11_coupon", by="lifecycle_stage")

Users are assigned by :meth:`AudienceEngine.split` with the experiment's salt (its name by
default), so the same user always gets the same variant. A campaign already sent (the
canonical ``touches`` table) is read as an experiment with :func:`experiment_from_touches`:
its variants and per-user touch times come from the table.

Outcomes are computed in Ibis (DuckDB by default) over ``orders`` and ``events`` within
``[touch time, touch time + window)``; only one row per variant (and segment) of counts,
means and variances comes back to Python for :mod:`huaxiang.analysis.stats`. The metrics
and the funnel are in :mod:`huaxiang.analysis.metrics`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from huaxiang.analysis.store import ExperimentStore, SavedExperiment
from huaxiang.errors import ConfigError, NotFoundError, RequestError, did_you_mean

EXPERIMENTS_DIR = "experiments"
ASSIGNMENT_FILE = "assignment.parquet"
OUTCOMES_FILE = "outcomes.parquet"
NAME = re.compile(r"^[^\W\d][\w\-]{0,63}$")
RATIO_TOLERANCE = 1e-6
MAX_WINDOW_DAYS = 365

MetricName = Literal["conversion", "gmv_per_user", "arpu", "order_count", "open_rate", "use_rate"]
DEFAULT_METRICS: tuple[MetricName, ...] = ("conversion", "gmv_per_user", "arpu", "order_count")


class Variant(BaseModel):
    """One arm of an experiment and the share of the audience it gets."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64)]
    ratio: Annotated[float, Field(gt=0, le=1)]
    name_zh: str | None = None


class ExperimentDefinition(BaseModel):
    """What an experiment is: audience, variants and control, touch date, window, metrics.

    ``source`` is ``split`` (users are assigned by a salted split of ``audience``) or
    ``touches`` (the variants and touch times of ``campaign_id`` in the ``touches`` table).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    source: Literal["split", "touches"] = "split"
    audience: str | None = None
    campaign_id: str | None = None
    variants: list[Variant]
    control: str = "control"
    salt: str | None = None
    stratify: str | None = None
    as_of: dt.date | None = None
    touch_date: dt.date
    window_days: Annotated[int, Field(ge=1, le=MAX_WINDOW_DAYS)] = 7
    metrics: list[MetricName] = Field(default_factory=lambda: list(DEFAULT_METRICS))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(
                f"experiment name {value!r} is not allowed: start with a letter, then letters, digits, "
                "_ or -, at most 64 characters (e.g. double11_coupon)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentDefinition:
        names = [v.name for v in self.variants]
        if len(names) < 2:
            raise ValueError("an experiment needs at least two variants, one of them the control group")
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ, got {', '.join(names)}")
        if self.control not in names:
            raise ValueError(
                f"the control group '{self.control}' is not one of the variants ({', '.join(names)})."
                f"{did_you_mean(self.control, names)} Name it with control: or add it to the variants"
            )
        total = sum(v.ratio for v in self.variants)
        if abs(total - 1) > RATIO_TOLERANCE:
            shares = ", ".join(f"{v.name}={v.ratio:g}" for v in self.variants)
            raise ValueError(f"variant ratios must sum to 1, got {shares} (sum {total:g}); adjust them")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics are listed twice: {', '.join(self.metrics)}")
        if self.source == "split" and not self.audience:
            raise ValueError("a split experiment needs an audience (a definition or @saved_name)")
        if self.source == "touches" and not self.campaign_id:
            raise ValueError("an experiment read from touches needs a campaign_id")
        return self

    @property
    def treatments(self) -> list[str]:
        return [v.name for v in self.variants if v.name != self.control]

    @property
    def split_salt(self) -> str:
        return self.salt or self.name


def definition_from_data(data: dict[str, Any], where: str = "experiment") -> ExperimentDefinition:
    """Validate plain data (from the CLI, a YAML file or the API) into a definition.

    Raises :class:`~huaxiang.errors.ConfigError` naming the field and what is wrong.
    """
    try:
        return ExperimentDefinition.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "(definition)"
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "literal_error" and item["loc"] and item["loc"][0] == "metrics":
                message += did_you_mean(str(item.get("input")), MetricName.__args__)  # type: ignore[attr-defined]
            problems.append(f"{where}: {field}: {message}")
        raise ConfigError("\n".join(problems)) from None


def load_definition(path: str | Path) -> ExperimentDefinition:
    """An experiment definition from a YAML file (errors name the file, line and field)."""
    from huaxiang.yamlfile import load_yaml, validate_file

    file = Path(path)
    data, node = load_yaml(file)
    return validate_file(file, ExperimentDefinition, data, node)


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no login name in some containers
        return "unknown"


def experiment_store(workspace_dir: Path, database_url: str | None) -> ExperimentStore:
    """The experiment tables of the workspace's metadata database (or of ``database_url``)."""
    from huaxiang.audience.store import default_url

    return ExperimentStore(database_url or default_url(workspace_dir))


def experiment_dir(workspace_dir: str | Path, name: str) -> Path:
    return Path(workspace_dir) / EXPERIMENTS_DIR / name


def create_experiment(
    workspace_dir: str | Path,
    definition: ExperimentDefinition | dict[str, Any],
    *,
    by: str | None = None,
    replace: bool = False,
    database_url: str | None = None,
) -> SavedExperiment:
    """Save an experiment's definition (assign its users next with :func:`assign`)."""
    root = Path(workspace_dir)
    if isinstance(definition, dict):
        definition = definition_from_data(definition)
    store = experiment_store(root, database_url)
    try:
        store.create(definition.name, definition.model_dump(mode="json"), _who(by), replace=replace)
        folder = experiment_dir(root, definition.name)
        for stale in (ASSIGNMENT_FILE, OUTCOMES_FILE):
            (folder / stale).unlink(missing_ok=True)
        return store.get(definition.name)
    finally:
        store.close()


def get_experiment(
    workspace_dir: str | Path, name: str, *, database_url: str | None = None
) -> tuple[ExperimentDefinition, SavedExperiment]:
    """The definition and the stored record of a saved experiment."""
    store = experiment_store(Path(workspace_dir), database_url)
    try:
        saved = store.get(name)
    finally:
        store.close()
    return ExperimentDefinition.model_validate(saved.definition), saved


def list_experiments(workspace_dir: str | Path, *, database_url: str | None = None) -> list[SavedExperiment]:
    store = experiment_store(Path(workspace_dir), database_url)
    try:
        return store.all()
    finally:
        store.close()


def _write_atomically(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    temporary.replace(path)


def assign(
    workspace_dir: str | Path, name: str, *, as_of: dt.date | None = None, database_url: str | None = None
) -> dict[str, int]:
    """Assign the experiment's users to variants and freeze the assignment; the group sizes.

    A ``split`` experiment evaluates its audience on the snapshot of ``as_of`` (the
    definition's ``as_of``, else the latest) and splits it with the audience engine's
    stable salted split; a ``touches`` experiment reads its campaign's rows of the
    ``touches`` table. The assignment (``user_id``, ``variant``, ``touch_time``) is written
    to ``DIR/experiments/NAME/assignment.parquet``.

    Raises
    ------
    huaxiang.audience.EmptyAudienceError
        The audience has no member.
    huaxiang.errors.NotFoundError
        No such experiment, snapshot or campaign.
    """
    root = Path(workspace_dir)
    definition, _ = get_experiment(root, name, database_url=database_url)
    if definition.source == "touches":
        table, snapshot_as_of = _touches_assignment(root, definition), "touches"
    else:
        table, snapshot_as_of = _split_assignment(root, definition, as_of or definition.as_of)
    _write_atomically(table, experiment_dir(root, name) / ASSIGNMENT_FILE)
    counts = {
        row["variant"]: row["count"]
        for row in table.group_by("variant")
        .aggregate([("variant", "count")])
        .rename_columns(["variant", "count"])
        .to_pylist()
    }
    sizes = {v.name: int(counts.get(v.name, 0)) for v in definition.variants}
    store = experiment_store(root, database_url)
    try:
        store.record_assignment(name, snapshot_as_of, sizes)
    finally:
        store.close()
    return sizes


def _split_assignment(
    root: Path, definition: ExperimentDefinition, as_of: dt.date | None
) -> tuple[pa.Table, str]:
    from huaxiang.audience import AudienceEngine

    engine = AudienceEngine(root, as_of)
    try:
        split = engine.split(
            definition.audience or "",
            [v.ratio for v in definition.variants],
            definition.split_salt,
            names=[v.name for v in definition.variants],
            stratify=definition.stratify,
        )
        snapshot_as_of = engine.as_of
    finally:
        engine.close()
    touch = dt.datetime.combine(definition.touch_date, dt.time())
    assignment = split.assignment
    table = pa.table(
        {
            "user_id": assignment.column("user_id"),
            "variant": assignment.column("group"),
            "touch_time": pa.array([touch] * assignment.num_rows, pa.timestamp("us")),
        }
    )
    return table, snapshot_as_of


def _touches_assignment(root: Path, definition: ExperimentDefinition) -> pa.Table:
    from huaxiang.workspace import Workspace

    con = ibis.duckdb.connect()
    try:
        touches = con.read_parquet(Workspace(root).table_path("touches"))
        rows = touches.filter(touches.campaign_id == definition.campaign_id)
        table = (
            rows.group_by("user_id")
            .aggregate(
                variant=rows.variant.min(), touch_time=rows.touch_time.min(), variants=rows.variant.nunique()
            )
            .order_by("user_id")
            .to_pyarrow()
        )
    finally:
        con.disconnect()
    if table.num_rows == 0:
        raise NotFoundError(f"campaign '{definition.campaign_id}' has no rows in the touches table.")
    mixed = table.filter(pc.greater(table.column("variants"), 1))
    if mixed.num_rows:
        raise RequestError(
            f"campaign '{definition.campaign_id}' touches user {mixed.column('user_id')[0]} in more than one "
            f"variant ({mixed.num_rows} such users); an experiment needs one variant per user."
        )
    return table.select(["user_id", "variant", "touch_time"]).cast(
        pa.schema([("user_id", pa.string()), ("variant", pa.string()), ("touch_time", pa.timestamp("us"))])
    )


def experiment_from_touches(
    workspace_dir: str | Path,
    campaign_id: str,
    *,
    name: str | None = None,
    control: str = "control",
    window_days: int = 7,
    metrics: list[str] | None = None,
    by: str | None = None,
    replace: bool = False,
    database_url: str | None = None,
) -> SavedExperiment:
    """Create and assign an experiment from a campaign already sent (the ``touches`` table).

    Variants, their observed shares and the touch date come from the campaign's rows;
    open and use rates come from its ``opened`` / ``used`` columns when they are filled.

    Parameters
    ----------
    workspace_dir
        The workspace (an ingested ``touches`` table).
    campaign_id
        The campaign in ``touches.campaign_id``.
    name
        The experiment's name (default: the campaign id).
    control
        The variant that was held out or served as control.
    window_days, metrics
        Attribution window and metrics (default: the four order metrics plus open and use rates).
    by, replace, database_url
        Who creates it, whether to replace an experiment of the same name, the metadata database.

    Raises
    ------
    huaxiang.errors.NotFoundError
        No such campaign (the message lists the campaigns, with a "did you mean").
    huaxiang.errors.ConfigError
        The campaign's variants do not make a valid experiment (e.g. no ``control`` variant).
    """
    from huaxiang.workspace import Workspace

    root = Path(workspace_dir)
    con = ibis.duckdb.connect()
    try:
        touches = con.read_parquet(Workspace(root).table_path("touches"))
        known = touches.select("campaign_id").distinct().to_pyarrow().column(0).to_pylist()
        if campaign_id not in known:
            raise NotFoundError(
                f"no campaign '{campaign_id}' in the touches table.{did_you_mean(campaign_id, known)} "
                f"Campaigns: {', '.join(sorted(str(k) for k in known)) or 'none'}."
            )
        rows = touches.filter(touches.campaign_id == campaign_id)
        counts = rows.group_by("variant").aggregate(users=rows.user_id.nunique()).order_by("variant")
        shares = counts.to_pyarrow().to_pylist()
        first_touch = rows.touch_time.min().to_pyarrow().as_py()
    finally:
        con.disconnect()
    total = sum(row["users"] for row in shares)
    ratios = [row["users"] / total for row in shares]
    # Keep the sum exactly 1 despite rounding.
    ratios[-1] = 1 - math.fsum(ratios[:-1])
    variants = [{"name": row["variant"], "ratio": ratio} for row, ratio in zip(shares, ratios, strict=True)]
    definition = definition_from_data(
        {
            "name": name or campaign_id,
            "source": "touches",
            "campaign_id": campaign_id,
            "variants": variants,
            "control": control,
            "touch_date": first_touch.date().isoformat(),
            "window_days": window_days,
            "metrics": metrics or [*DEFAULT_METRICS, "open_rate", "use_rate"],
            "description": f"campaign {campaign_id} read from the touches table",
        }
    )
    saved = create_experiment(root, definition, by=by, replace=replace, database_url=database_url)
    assign(root, saved.name, database_url=database_url)
    return get_experiment(root, saved.name, database_url=database_url)[1]


def assignment_path(workspace_dir: str | Path, name: str) -> Path:
    """The frozen assignment of an experiment, or a clear error when it was not assigned."""
    path = experiment_dir(workspace_dir, name) / ASSIGNMENT_FILE
    if not path.is_file():
        raise RequestError(
            f"experiment '{name}' has no assignment yet; run 'huaxiang experiment assign {name}' first."
        )
    return path
