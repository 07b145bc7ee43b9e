{{ config(materialized='incremental', window_after_days=7) }}

{#-
  Daily trend lines: the day's headline metrics, GMI over the last 7 calendar days (the day
  and the six before it, weighted by readings) and the change from the previous calendar day.
  A run rebuilds its window plus the 7 days after it, whose rolling values include the window.
-#}

with

days as (

    select *
    from {{ ref('mrt_daily_glycaemia') }}
    where {{ window_filter('local_date', before_days=7, after_days=7) }}

),

rolling as (

    select
        *,
        sum(mean_mg_dl * readings) over last_7_days / sum(readings) over last_7_days
            as mean_7d_mg_dl,
        sum(readings) over last_7_days as readings_7d,
        count(*) over last_7_days as days_with_data_7d

    from days
    window last_7_days as (
        partition by subject_id order by local_date
        range between interval 6 days preceding and current row
    )

),

final as (

    select
        d.subject_id,
        d.local_date,
        d.readings,
        d.wear_pct,
        d.is_low_wear,
        d.mean_mg_dl,
        d.gmi_pct,
        d.cv_pct,
        d.tir_pct,
        {{ metric('3.31 + 0.02392 * d.mean_7d_mg_dl') }} as gmi_7d_pct,
        d.readings_7d::integer as readings_7d,
        d.days_with_data_7d::integer as days_with_data_7d,
        {{ metric('d.mean_mg_dl - p.mean_mg_dl') }} as mean_change_mg_dl,
        {{ metric('d.tir_pct - p.tir_pct') }} as tir_change_pct,
        {{ metric('d.gmi_pct - p.gmi_pct') }} as gmi_change_pct

    from rolling as d
    left join days as p
        on p.subject_id = d.subject_id and p.local_date = d.local_date - 1
    where {{ window_filter('d.local_date', after_days=7) }}

)

select * from final
order by local_date, subject_id
