{#-
  Glycaemic variability per subject and period (the periods of mrt_period_summary), one column per
  metric, named after iglu's functions and computed as iglu computes them with its defaults, so
  that iglu can check every number. Metrics on readings use the readings as they are; MODD,
  CONGA, MAG, GVP, AUC, SD of ROC and MAGE use iglu's interpolated grid (macros/glucose_grid.sql),
  built per period from that period's readings only, as iglu would be given them.
  Everything is computed per distinct window (macros/periods.sql): a subject with less than
  90 days of data has one window for several periods, and pays for it once. Built in groups of
  subjects (macros/subject_batches.sql): MAGE's walks and the quantiles do not spill to disk;
  the groups read the readings once, staged in a temporary table.
-#}

{{ config(
    pre_hook=before_begin(
        "{{ stage_batch_input(ref('fct_glucose_readings'),"
        " ['subject_id', 'local_date', 'reading_at', 'glucose_mg_dl']) }}"
    ),
    post_hook=["{{ insert_subject_batches() }}", after_commit("{{ drop_batch_input() }}")],
) }}

with

period_windows as (

    {{ period_windows(batch_input()) }}

),

period_readings as (

    select subject_id, window_start, local_date, reading_at, glucose_mg_dl::double as gl
    from ({{ readings_by_window(batch_input()) }})
    where {{ subject_batch('subject_id', ref('fct_glucose_readings')) }}

),

grid_input as (

    select subject_id, window_start, reading_at, gl as glucose_mg_dl
    from period_readings

),

grid as (

    {{ glucose_grid('grid_input', ['subject_id', 'window_start']) }}

),

-- sd_roc and mage interpolate onto a fixed 5-minute grid whatever the sensor interval
grid_5 as (

    {{ glucose_grid('grid_input', ['subject_id', 'window_start'], dt0_min=5) }}

),

lagged as (

    -- each grid point with the points one step, one hour, one day before (iglu's lags:
    -- MODD int(1440 / dt0), CONGA round(60 / dt0) * n)
    select
        g.subject_id,
        g.window_start,
        g.dt0_min,
        g.gl,
        step.gl as gl_step_before,
        hour.gl as gl_hour_before,
        day.gl as gl_day_before,
        modd.gl as gl_modd_before

    from grid as g
    left join grid as step
        on step.subject_id = g.subject_id and step.window_start = g.window_start
        and step.grid_index = g.grid_index - 1
    left join grid as hour
        on hour.subject_id = g.subject_id and hour.window_start = g.window_start
        and hour.grid_index = g.grid_index - round(60 / g.dt0_min)::bigint
    left join grid as day
        on day.subject_id = g.subject_id and day.window_start = g.window_start
        and day.grid_index = g.grid_index - 24 * round(60 / g.dt0_min)::bigint
    left join grid as modd
        on modd.subject_id = g.subject_id and modd.window_start = g.window_start
        and modd.grid_index = g.grid_index - (1440 // g.dt0_min)::bigint

),

grid_metrics as (

    select
        subject_id,
        window_start,
        avg(abs(gl - gl_modd_before)) as modd,
        case when count(gl_hour_before) >= 2 then stddev_samp(gl - gl_hour_before) end as conga_1,
        case when count(gl_day_before) >= 2 then stddev_samp(gl - gl_day_before) end as conga_24,
        sum(abs(gl - gl_step_before)) / (count(gl_step_before) * any_value(dt0_min) / 60.0) as mag,
        100 * (
            sum(sqrt(pow(dt0_min, 2) + pow(gl - gl_step_before, 2)))
            / (count(gl_step_before) * any_value(dt0_min)) - 1
        ) as gvp,
        -- iglu's hourly AUC: trapezoids between neighbouring grid points, per hour covered
        avg((gl + gl_step_before) / 2) filter (where gl_step_before is not null) as auc_mg_dl_h

    from lagged
    group by all

),

roc_metrics as (

    -- rate of change over 15 min on the 5-min grid (mg/dL/min)
    select
        g.subject_id,
        g.window_start,
        stddev_samp((g.gl - before.gl) / 15) as sd_roc

    from grid_5 as g
    inner join grid_5 as before
        on before.subject_id = g.subject_id and before.window_start = g.window_start
        and before.grid_index = g.grid_index - 3
    group by all

),

daily_risk as (

    -- ADRR: each day's highest hyper risk plus highest hypo risk, f = ln(gl)^1.084 - 5.381
    select
        subject_id,
        window_start,
        local_date,
        22.77 * pow(greatest(max(pow(ln(gl), 1.084) - 5.381), 0), 2)
        + 22.77 * pow(least(min(pow(ln(gl), 1.084) - 5.381), 0), 2) as daily_risk

    from period_readings
    group by all

),

medians as (

    select subject_id, window_start, quantile_cont(gl, 0.5) as median_gl
    from period_readings
    group by all

),

scored as (

    select
        r.*,
        m.median_gl,
        least(425 * pow(log10(log10(r.gl / 18)) + 0.16, 2), 50) as grade_score

    from period_readings as r
    inner join medians as m using (subject_id, window_start)

),

reading_metrics as (

    select
        subject_id,
        window_start,
        avg(gl) as mean_gl,
        stddev_samp(gl) as sd_gl,
        1000 * avg(pow(abs(log10(gl / 90)), 3)) as m_value,
        avg(grade_score) as grade,
        100 * sum(grade_score) filter (where gl < 80) / sum(grade_score) as grade_hypo_pct,
        coalesce(100 * sum(grade_score) filter (where gl >= 70 and gl <= 140) / sum(grade_score), 0)
            as grade_eugly_pct,
        100 * sum(grade_score) filter (where gl > 140) / sum(grade_score) as grade_hyper_pct,
        coalesce(sum(pow(80 - gl, 2)) filter (where gl < 80), 0) / (count(*) * 30) as hypo_index,
        coalesce(sum(pow(gl - 140, 1.1)) filter (where gl > 140), 0) / (count(*) * 30)
            as hyper_index,
        (46.7 + avg(gl)) / 28.7 as ea1c,
        quantile_cont(gl, 0.75) - quantile_cont(gl, 0.25) as iqr_mg_dl,
        1.4826 * median(abs(gl - median_gl)) as mad_mg_dl,
        any_value(median_gl) as median_mg_dl,
        100.0 * count(*) filter (where gl >= 70 and gl <= 180) / count(*) as pct_in_range,
        100.0 * count(*) filter (where gl < 70) / count(*) as pct_below_70,
        100.0 * count(*) filter (where gl >= 70 and gl <= 140) / count(*) as pct_tight_target

    from scored
    group by all

),

adrr as (

    select subject_id, window_start, avg(daily_risk) as adrr
    from daily_risk
    group by all

),

mage as (

    -- sqlfluff's duckdb dialect parses one-parameter lambdas only (mage_ma folds with two)
    {{ mage_ma('grid_5', ['subject_id', 'window_start']) }}  -- noqa: PRS

),

final as (

    select
        w.subject_id,
        w.period,
        {{ metric('mage.mage') }} as mage,
        {{ metric('g.modd') }} as modd,
        {{ metric('g.conga_1') }} as conga_1,
        {{ metric('g.conga_24') }} as conga_24,
        {{ metric('g.mag') }} as mag,
        {{ metric('g.gvp') }} as gvp,
        {{ metric('a.adrr') }} as adrr,
        {{ metric('r.m_value') }} as m_value,
        {{ metric('r.grade') }} as grade,
        {{ metric('coalesce(r.grade_hypo_pct, 0)') }} as grade_hypo_pct,
        {{ metric('r.grade_eugly_pct') }} as grade_eugly_pct,
        {{ metric('coalesce(r.grade_hyper_pct, 0)') }} as grade_hyper_pct,
        {{ metric('r.hypo_index') }} as hypo_index,
        {{ metric('r.hyper_index') }} as hyper_index,
        {{ metric('r.hypo_index + r.hyper_index') }} as igc,
        -- COGI: 50 % time in range, 35 % time below 70 (0 at 15 %), 15 % SD (0 at 108 mg/dL)
        {{ metric(
            '100 * (0.5 * least(greatest(r.pct_in_range / 100, 0), 1)'
            ~ ' + 0.35 * least(greatest(1 - r.pct_below_70 / 15, 0), 1)'
            ~ ' + 0.15 * least(greatest(1 - (r.sd_gl - 18) / 90, 0), 1))'
        ) }} as cogi,
        {{ metric('r.ea1c') }} as ea1c,
        {{ metric('g.auc_mg_dl_h') }} as auc_mg_dl_h,
        {{ metric('roc.sd_roc') }} as sd_roc,
        {{ metric('r.iqr_mg_dl') }} as iqr_mg_dl,
        {{ metric('r.mad_mg_dl') }} as mad_mg_dl,
        {{ metric('r.median_mg_dl') }} as median_mg_dl,
        {{ metric('r.pct_tight_target') }} as pct_tight_target

    from period_windows as w
    inner join reading_metrics as r using (subject_id, window_start)
    left join grid_metrics as g using (subject_id, window_start)
    left join roc_metrics as roc using (subject_id, window_start)
    left join adrr as a using (subject_id, window_start)
    left join mage using (subject_id, window_start)

)

select * from final
order by subject_id, period
