{#-
  The Ambulatory Glucose Profile: 5th, 25th, 50th, 75th and 95th percentiles of glucose per
  subject per 15-minute bin of local time of day, for each summary period (computed once per
  distinct window: macros/periods.sql).
-#}

with

period_windows as (

    {{ period_windows(ref('fct_glucose_readings')) }}

),

readings as (

    select subject_id, window_start, tod_bin, glucose_mg_dl
    from ({{ readings_by_window(ref('fct_glucose_readings')) }})

),

by_window as (

    select
        subject_id,
        window_start,
        tod_bin,
        make_time(tod_bin * 15 // 60, tod_bin * 15 % 60, 0) as bin_start,
        count(*)::integer as readings,
        {{ metric('quantile_cont(glucose_mg_dl, 0.05)') }} as p05_mg_dl,
        {{ metric('quantile_cont(glucose_mg_dl, 0.25)') }} as p25_mg_dl,
        {{ metric('quantile_cont(glucose_mg_dl, 0.50)') }} as p50_mg_dl,
        {{ metric('quantile_cont(glucose_mg_dl, 0.75)') }} as p75_mg_dl,
        {{ metric('quantile_cont(glucose_mg_dl, 0.95)') }} as p95_mg_dl,
        {{ metric('avg(glucose_mg_dl)') }} as mean_mg_dl

    from readings
    group by subject_id, window_start, tod_bin

),

final as (

    select
        w.subject_id,
        w.period,
        b.tod_bin,
        b.bin_start,
        b.readings,
        b.p05_mg_dl,
        b.p25_mg_dl,
        b.p50_mg_dl,
        b.p75_mg_dl,
        b.p95_mg_dl,
        b.mean_mg_dl

    from period_windows as w
    inner join by_window as b using (subject_id, window_start)

)

select * from final
order by subject_id, period, tod_bin
