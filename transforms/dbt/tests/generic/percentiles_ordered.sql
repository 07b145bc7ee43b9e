{#- AGP percentiles never cross: p05 <= p25 <= p50 <= p75 <= p95. -#}
{% test percentiles_ordered(model) %}
    select *
    from {{ model }}
    where not (p05_mg_dl <= p25_mg_dl and p25_mg_dl <= p50_mg_dl
        and p50_mg_dl <= p75_mg_dl and p75_mg_dl <= p95_mg_dl)
{% endtest %}
