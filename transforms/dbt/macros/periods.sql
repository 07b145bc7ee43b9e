{#- The summary periods: (name, days), days null for all data. Shared by the AGP and summary marts. -#}
{% macro summary_periods() -%}
    select * from (
        values ('last_14_days', 14), ('last_30_days', 30), ('last_90_days', 90), ('all', null)
    ) as p (period, period_days)
{%- endmacro %}

{#- Readings of `relation` joined to each period they fall in; a period ends at the subject's last day. -#}
{% macro readings_by_period(relation) -%}
    select p.period, r.*
    from {{ relation }} as r
    inner join (
        select subject_id, max(local_date) as period_end
        from {{ relation }}
        group by subject_id
    ) as s using (subject_id)
    cross join ({{ summary_periods() }}) as p
    where p.period_days is null or r.local_date > s.period_end - p.period_days
{%- endmacro %}
