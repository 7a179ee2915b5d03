"""Does a prediction on the logged input example look like the logged signature's outputs?

The check is deliberately loose: MLflow signatures are often inferred from a sample, and a
model whose output is, say, int32 where int64 was logged is not lying. What is checked:

* rows: the output has as many rows as the example (when both are known);
* column count: a column-based output schema with N columns needs N output columns (a 1-D
  array or a Series counts as one); a tensor schema's fixed trailing dimensions must match;
* column names: only when every schema column is named AND the output has column names
  (a DataFrame or a dict): the two sets must be equal (order is not checked);
* type class: each column's values must be of the same class as the schema type, where the
  classes are numeric (integer, long, float, double; booleans count as numeric too), string,
  bytes and datetime. Types outside these (arrays, objects, maps) are not type-checked.

`describe_schema` and `describe_output` turn MLflow/numpy/pandas objects into plain data
(imported lazily); `check_output` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Type classes. "other" is never compared.
NUMERIC, STRING, BYTES, DATETIME, OTHER = "numeric", "string", "bytes", "datetime", "other"

_MLFLOW_TYPE_CLASS = {
    "boolean": NUMERIC,
    "integer": NUMERIC,
    "long": NUMERIC,
    "float": NUMERIC,
    "double": NUMERIC,
    "string": STRING,
    "binary": BYTES,
    "datetime": DATETIME,
}

_NUMPY_KIND_CLASS = {
    "b": NUMERIC,
    "i": NUMERIC,
    "u": NUMERIC,
    "f": NUMERIC,
    "c": NUMERIC,
    "U": STRING,
    "S": BYTES,
    "M": DATETIME,
}


@dataclass(frozen=True)
class SchemaDescription:
    """Plain description of a signature's outputs.

    `columns` for a column-based schema: (name or None, type class) per column. `tensor_shape`
    and `tensor_class` for a tensor-based schema (-1 is a free dimension).
    """

    columns: tuple[tuple[str | None, str], ...] = ()
    tensor_shape: tuple[int, ...] | None = None
    tensor_class: str = OTHER


@dataclass(frozen=True)
class OutputDescription:
    """Plain description of a prediction: rows, shape, column names (if any), type classes."""

    rows: int | None
    shape: tuple[int, ...]
    names: tuple[str, ...] | None
    classes: tuple[str, ...]
    kind: str


def _class_of_values(values: Any) -> str:
    """Type class of a sequence of Python values (first non-null decides)."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, float) and value != value:  # NaN
            continue
        if isinstance(value, bool | int | float | complex):
            return NUMERIC
        if isinstance(value, str):
            return STRING
        if isinstance(value, bytes | bytearray):
            return BYTES
        try:
            import numpy as np

            if isinstance(value, np.number | np.bool_):
                return NUMERIC
            if isinstance(value, np.datetime64):
                return DATETIME
        except ImportError:  # pragma: no cover - numpy is always there with pandas
            pass
        import datetime

        if isinstance(value, datetime.date):
            return DATETIME
        return OTHER
    return OTHER


def _class_of_array(array: Any) -> str:
    kind = getattr(getattr(array, "dtype", None), "kind", "O")
    if kind == "O":
        return _class_of_values(list(array.ravel()[:50]) if hasattr(array, "ravel") else array)
    return _NUMPY_KIND_CLASS.get(kind, OTHER)


def _class_of_series(series: Any) -> str:
    dtype = series.dtype
    kind = getattr(dtype, "kind", "O")
    if kind in _NUMPY_KIND_CLASS:
        return _NUMPY_KIND_CLASS[kind]
    name = str(dtype).lower()
    if name.startswith(("string", "str")):
        return STRING
    if name.startswith(("int", "uint", "float", "bool", "boolean")):
        return NUMERIC
    if name.startswith("datetime"):
        return DATETIME
    return _class_of_values(series.dropna().head(50).tolist())


def describe_output(output: Any) -> OutputDescription:
    """Describe a pyfunc prediction (DataFrame, Series, ndarray, list, dict, scalar)."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return OutputDescription(
            rows=len(output),
            shape=tuple(int(d) for d in output.shape),
            names=tuple(str(c) for c in output.columns),
            classes=tuple(_class_of_series(output[c]) for c in output.columns),
            kind="DataFrame",
        )
    if isinstance(output, pd.Series):
        return OutputDescription(
            rows=len(output),
            shape=(len(output),),
            names=None,
            classes=(_class_of_series(output),),
            kind="Series",
        )
    if isinstance(output, dict):
        names = tuple(str(k) for k in output)
        columns = [np.asarray(v) for v in output.values()]
        lengths = {len(c) if c.ndim else 1 for c in columns}
        rows = lengths.pop() if len(lengths) == 1 else None
        return OutputDescription(
            rows=rows,
            shape=(rows or 0, len(names)),
            names=names,
            classes=tuple(_class_of_array(c) for c in columns),
            kind="dict",
        )
    if isinstance(output, str | bytes) or np.isscalar(output):
        return OutputDescription(
            rows=None,
            shape=(),
            names=None,
            classes=(_class_of_values([output]),),
            kind=type(output).__name__,
        )
    array = np.asarray(output)
    shape = tuple(int(d) for d in array.shape)
    width = 1 if array.ndim <= 1 else int(np.prod(shape[1:]))
    return OutputDescription(
        rows=shape[0] if shape else None,
        shape=shape,
        names=None,
        classes=tuple([_class_of_array(array)] * max(width, 1)),
        kind=type(output).__name__,
    )


def describe_schema(outputs: Any) -> SchemaDescription | None:
    """Describe an `mlflow.types.Schema` of outputs; None when there is nothing to check."""
    if outputs is None:
        return None
    inputs = list(getattr(outputs, "inputs", []) or [])
    if not inputs:
        return None
    if getattr(outputs, "is_tensor_spec", lambda: False)():
        spec = inputs[0]
        dtype = getattr(spec, "type", None)
        kind = getattr(dtype, "kind", "O")
        shape = tuple(int(d) for d in getattr(spec, "shape", ()) or ())
        if len(inputs) > 1:  # several named tensors: compare as named columns
            return SchemaDescription(
                columns=tuple(
                    (getattr(s, "name", None), _NUMPY_KIND_CLASS.get(s.type.kind, OTHER))
                    for s in inputs
                )
            )
        return SchemaDescription(
            tensor_shape=shape, tensor_class=_NUMPY_KIND_CLASS.get(kind, OTHER)
        )
    columns: list[tuple[str | None, str]] = []
    for spec in inputs:
        type_name = getattr(getattr(spec, "type", None), "name", None)
        columns.append(
            (
                getattr(spec, "name", None),
                _MLFLOW_TYPE_CLASS.get(str(type_name), OTHER) if type_name else OTHER,
            )
        )
    return SchemaDescription(columns=tuple(columns))


def _compatible(expected: str, seen: str) -> bool:
    return OTHER in (expected, seen) or expected == seen


def check_output(
    schema: SchemaDescription, output: OutputDescription, example_rows: int | None
) -> tuple[bool, str]:
    """(passed, detail) for a prediction against the logged output schema (see module doc)."""
    problems: list[str] = []
    if example_rows is not None and output.rows is not None and output.rows != example_rows:
        problems.append(f"returned {output.rows} rows for {example_rows} example rows")
    width = 1 if len(output.shape) <= 1 else len(output.classes)
    if schema.tensor_shape is not None:
        expected_tail = schema.tensor_shape[1:]
        seen_tail = output.shape[1:]
        if expected_tail == () and seen_tail in ((), (1,)):
            pass
        elif len(expected_tail) != len(seen_tail) or any(
            e not in (-1, s) for e, s in zip(expected_tail, seen_tail, strict=True)
        ):
            problems.append(
                f"output shape {output.shape} does not fit signature shape {schema.tensor_shape}"
            )
        wrong = sorted({c for c in output.classes if not _compatible(schema.tensor_class, c)})
        if wrong:
            problems.append(
                f"output values are {'/'.join(wrong)}, signature says {schema.tensor_class}"
            )
        checked = f"tensor {schema.tensor_shape} {schema.tensor_class}"
    else:
        expected_names = [name or "" for name, _ in schema.columns]
        if len(schema.columns) != width:
            problems.append(f"{width} output columns, signature has {len(schema.columns)}")
        named = all(expected_names) and output.names is not None
        if named and set(output.names or ()) != set(expected_names):
            missing = sorted(set(expected_names) - set(output.names or ()))
            extra = sorted(set(output.names or ()) - set(expected_names))
            problems.append(f"column names differ (missing {missing}, unexpected {extra})")
        if named and output.names is not None:
            by_name = dict(zip(output.names, output.classes, strict=True))
            pairs = [(n, c, by_name.get(str(n), OTHER)) for n, c in schema.columns]
        else:
            pairs = [
                (n or f"#{i}", c, output.classes[i] if i < len(output.classes) else OTHER)
                for i, (n, c) in enumerate(schema.columns)
            ]
        for name, expected, seen in pairs:
            if not _compatible(expected, seen):
                problems.append(f"column {name} is {seen}, signature says {expected}")
        checked = f"{len(schema.columns)} column(s)" + (", names" if named else "")
    if problems:
        return False, "; ".join(problems)
    return True, f"output ({output.kind} {output.shape}) matches signature: {checked}"
