"""The JSON Schema of the spec format, for editors (`reconciler schema`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from reconciler.model import Domain, Network, Profile


def json_schema() -> dict[str, Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[Domain | Network | Profile, Field(discriminator="kind")])
    schema = adapter.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "reconciler spec"
    return schema
