"""dbt's `adapter` for sqlfluff's jinja templater (which sets `execute`): lint sees a lake
without the optional relations, as on a fresh lake, so templated SQL takes its fallback branch."""


def get_relation(*args, **kwargs):
    return None


def get_columns_in_relation(relation):
    return []


def quote(name: str) -> str:
    return f'"{name}"'
