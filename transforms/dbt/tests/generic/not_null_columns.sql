{#- None of `columns` is null on any row: one query per model instead of one per column. -#}
{% test not_null_columns(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    where {{ columns | join(' is null or ') }} is null
{% endtest %}
