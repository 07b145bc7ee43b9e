{#- The percentages in `columns` (the five glucose bands) add up to 100 on every row
  (within `tolerance`: each is rounded to 4 decimals). -#}
{% test bands_sum_to_100(model, columns, tolerance=0.001) %}
    select *
    from {{ model }}
    where abs(({{ columns | join(' + ') }}) - 100) > {{ tolerance }}
{% endtest %}
