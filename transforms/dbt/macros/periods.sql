{#- The summary periods: (name, days), days null for all data. Shared by the period marts. -#}
{% macro summary_periods() -%}
    select * from (
        values ('last_14_days', 14), ('last_30_days', 30), ('last_90_days', 90), ('all', null)
    ) as p (period, period_days)
{%- endmacro %}

{#-
  Each subject's periods as the first local day of their window (the window ends at the
  subject's last day): (subject_id, period, window_start). Periods longer than a subject's
  history share one window, the one of `all`: a model that groups by window_start instead of
  period computes each distinct window once and joins the periods back to it.
-#}
{% macro period_windows(relation) -%}
    select
        s.subject_id,
        p.period,
        case
            when p.period_days is null then s.first_day
            else greatest(s.first_day, s.period_end - p.period_days + 1)
        end as window_start
    from (
        select subject_id, min(local_date) as first_day, max(local_date) as period_end
        from {{ relation }}
        group by subject_id
    ) as s
    cross join ({{ summary_periods() }}) as p
{%- endmacro %}

{#- Readings of `relation` joined to each distinct window (of period_windows) they fall in. -#}
{% macro readings_by_window(relation) -%}
    select w.window_start, r.*
    from {{ relation }} as r
    inner join (
        select distinct subject_id, window_start from ({{ period_windows(relation) }})
    ) as w using (subject_id)
    where r.local_date >= w.window_start
{%- endmacro %}
