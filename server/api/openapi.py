"""The OpenAPI document, generated from the URL map and the marshmallow schemas.

Views describe themselves with ``@api_doc(summary=..., body=Schema, response=Schema)``; the
paths, methods and path parameters come from ``app.url_map``, so every route is covered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app
from marshmallow import Schema

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("openapi", __name__)

_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
#: Werkzeug's ``int`` converter takes no sign; ``server.api.util.IdConverter`` caps it at 64 bits.
_PARAM_TYPES = {
    "int": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "uuid": {"type": "string", "format": "uuid"},
    "string": {"type": "string"},
    None: {"type": "string"},
}


#: Types of query parameters that are not free text (``server.api.util.paging`` and the views).
_QUERY_TYPES: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "offset": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "cursor": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "group": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    "cutoff": {"type": "string", "format": "date-time"},
}


#: Request text may not hold NUL (``server.api.util.refuse_nul``; PostgreSQL cannot store it).
NO_NUL = "^[^\\u0000]*$"


def _forbid_nul(node: Any) -> None:
    """Give every plain, writable string schema of the document the ``NO_NUL`` pattern."""
    if isinstance(node, dict):
        plain = not ({"pattern", "enum", "format", "readOnly"} & node.keys())
        if node.get("type") == "string" and plain:
            node["pattern"] = NO_NUL
        for value in node.values():
            _forbid_nul(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_nul(value)


def _query_types() -> dict[str, dict[str, Any]]:
    """``_QUERY_TYPES`` plus ``state``: a comma-separated list of reconciliation states."""
    from server.reconcile.derive import STATES

    one = "(" + "|".join(STATES) + ")"
    return {**_QUERY_TYPES, "state": {"type": "string", "pattern": f"^({one}(,{one})*)?$"}}


def api_doc(
    summary: str = "",
    *,
    body: type[Schema] | Schema | None = None,
    response: type[Schema] | Schema | None = None,
    status: int = 200,
    query: dict[str, str] | None = None,
    refused_query: tuple[str, ...] = (),
    content_type: str = "application/json",
) -> Callable[[F], F]:
    """Attach OpenAPI metadata to a view; the view itself is unchanged.

    ``refused_query`` names query parameters the view no longer takes but answers with its own
    400 message (search terms moved to a request body, say). They pass
    ``server.api.util.reject_unknown_query``, which allows every name of ``query``, so the view
    can say what to do instead; the OpenAPI document leaves them out.
    """

    def decorate(view: F) -> F:
        view._api_doc = {  # type: ignore[attr-defined]
            "summary": summary,
            "body": body,
            "response": response,
            "status": status,
            "query": {**(query or {}), **dict.fromkeys(refused_query, "")},
            "refused_query": refused_query,
            "content_type": content_type,
        }
        return view

    return decorate


def _schema_ref(spec: Any, schema: type[Schema] | Schema) -> dict[str, Any]:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema") or cls.__name__
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=cls)
    return {"$ref": f"#/components/schemas/{name}"}


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3 document of every ``/api/v1`` route of ``app``."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec(
        title="Muster API", version="1", openapi_version="3.0.3", plugins=[MarshmallowPlugin()]
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema(
        "Error",
        {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "object"},
                    },
                }
            },
        },
    )
    query_types = _query_types()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/v1"):
            continue
        view = app.view_functions[rule.endpoint]
        meta = getattr(view, "_api_doc", {})
        path = _CONVERTER.sub(r"{\2}", rule.rule)
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": _PARAM_TYPES.get(conv, {"type": "string"}),
            }
            for conv, name in _CONVERTER.findall(rule.rule)
        ]
        operations: dict[str, Any] = {}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {
                "summary": meta.get("summary") or (view.__doc__ or rule.endpoint).split("\n")[0],
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "tags": [rule.endpoint.split(".")[0]],
                "parameters": params
                + [
                    {
                        "name": n,
                        "in": "query",
                        "required": False,
                        "description": d,
                        "schema": query_types.get(n, {"type": "string"}),
                    }
                    for n, d in meta.get("query", {}).items()
                    if n not in meta.get("refused_query", ())
                ],
                "responses": {
                    "default": {
                        "description": "An error in the one error shape.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    }
                },
            }
            status = str(meta.get("status", 200))
            if meta.get("response") is not None:
                op["responses"][status] = {
                    "description": "Success.",
                    "content": {
                        meta["content_type"]
                        if method == "GET" and meta["content_type"] != "application/json"
                        else "application/json": {"schema": _schema_ref(spec, meta["response"])}
                    },
                }
            else:
                op["responses"][status] = {"description": "Success."}
            if meta.get("body") is not None:
                kind = (
                    "multipart/form-data"
                    if meta["content_type"] == "multipart/form-data"
                    else "application/json"
                )
                op["requestBody"] = {
                    "required": True,
                    "content": {kind: {"schema": _schema_ref(spec, meta["body"])}},
                }
            if (
                not rule.rule.startswith(("/api/v1/sync/", "/api/v1/tokens"))
                or rule.rule == "/api/v1/tokens/current"
            ):
                op["security"] = [{"bearer": []}]
            operations[method.lower()] = op
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    _forbid_nul(document)
    return document


@bp.get("/api/openapi.json")
def openapi_json() -> dict[str, Any]:
    """The OpenAPI document of the JSON API (generated, never written by hand)."""
    cached = current_app.extensions.get("muster.openapi")
    if cached is None:
        cached = current_app.extensions["muster.openapi"] = build_spec(current_app)
    return cached
