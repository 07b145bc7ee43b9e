{#-
  Consensus episodes per subject, period (those of mrt_period_summary), type and level, as iglu's
  episode_calculation summarises them: episodes per day of interpolated data (grid points with a
  value x dt0), mean duration and mean of each episode's mean glucose. An episode belongs to the
  period its local start day falls in. lv1_excl (hypo and hyper) counts the level 1 episodes that
  hold no level 2 episode. Every level has a row; with no episodes the count and rate are 0 and
  duration and glucose null (iglu reports duration 0 there). The grid is built once per distinct
  window (macros/periods.sql: periods longer than a subject's history share one).
-#}

with

period_windows as (

    {{ period_windows(ref('fct_glucose_readings')) }}

),

window_readings as (

    select subject_id, window_start, reading_at, glucose_mg_dl
    from ({{ readings_by_window(ref('fct_glucose_readings')) }})

),

grid as (

    {{ glucose_grid('window_readings', ['subject_id', 'window_start']) }}

),

coverage as (

    select w.subject_id, w.period, c.covered_days
    from period_windows as w
    inner join (
        select subject_id, window_start, count(*) * any_value(dt0_min) / 1440.0 as covered_days
        from grid
        group by all
    ) as c using (subject_id, window_start)

),

levels as (

    select episode_type, level from ({{ episode_levels() }})
    union all
    select * from (values ('hypo', 'lv1_excl'), ('hyper', 'lv1_excl')) as x (episode_type, level)

),

period_episodes as (

    select
        w.period,
        e.subject_id,
        e.episode_type,
        e.level,
        e.duration_min,
        e.mean_mg_dl,
        e.reaches_lv2

    from {{ ref('fct_glycaemic_episodes') }} as e
    inner join period_windows as w using (subject_id)
    where e.local_date >= w.window_start

),

episode_rows as (

    select period, subject_id, episode_type, level, duration_min, mean_mg_dl
    from period_episodes

    union all

    select period, subject_id, episode_type, 'lv1_excl' as level, duration_min, mean_mg_dl
    from period_episodes
    where level = 'lv1' and not reaches_lv2

),

final as (

    select
        c.subject_id,
        c.period,
        l.episode_type,
        l.level,
        count(e.subject_id)::integer as episodes,
        {{ metric('count(e.subject_id) / c.covered_days') }} as episodes_per_day,
        {{ metric('avg(e.duration_min)') }} as mean_duration_min,
        {{ metric('avg(e.mean_mg_dl)') }} as mean_glucose_mg_dl

    from coverage as c
    cross join levels as l
    left join episode_rows as e
        on e.subject_id = c.subject_id
        and e.period = c.period
        and e.episode_type = l.episode_type
        and e.level = l.level
    group by c.subject_id, c.period, l.episode_type, l.level, c.covered_days

)

select * from final
order by subject_id, period, episode_type, level
