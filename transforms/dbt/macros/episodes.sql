{#-
  The consensus glycaemic episodes of Battelino et al. (Lancet Diabetes Endocrinol 2023) as iglu's
  episode_calculation finds them with its defaults, on the grid of macros/glucose_grid.sql
  (dt0 = the sensor interval, gaps over 45 min split the trace into segments):
  - per level (hypo lv1 < 70, lv2 < 54, extended < 70; hyper lv1 > 180, lv2 > 250) the segment is
    cut into runs of grid points beyond / not beyond the threshold;
  - a run beyond the threshold of at least ceil(15 / dt0) points (extended: int(120 / dt0) + 1,
    i.e. more than 120 min) starts an episode; a run back of at least ceil(15 / dt0) points ends
    it, the episode being every point from its start to the point before that run (short returns
    inside stay in the episode); starts before the same end are one episode, from the first;
  - an episode still open where its segment ends (a gap or the end of the data) ends there.
  Durations count grid points: duration_min = points * dt0, so three 5-min points are 15 min.
  `relation` has subject_id, reading_at and glucose_mg_dl.
-#}
{% macro episode_levels() -%}
    select * from (
        values
            ('hypo', 'lv1', 70.0, false),
            ('hypo', 'lv2', 54.0, false),
            ('hypo', 'extended', 70.0, true),
            ('hyper', 'lv1', 180.0, false),
            ('hyper', 'lv2', 250.0, false)
    ) as l (episode_type, level, threshold_mg_dl, is_extended)
{%- endmacro %}

{% macro glycaemic_episodes(relation) -%}
    with

    episode_grid as (

        {{ glucose_grid(relation, ['subject_id']) }}

    ),

    segmented as (

        -- a segment is a stretch of consecutive grid points (iglu: a run of non-NA values)
        select
            *,
            grid_index - row_number() over (partition by subject_id order by grid_index) as segment

        from episode_grid

    ),

    flagged as (

        select
            s.*,
            l.episode_type,
            l.level,
            case when l.episode_type = 'hypo' then s.gl < l.threshold_mg_dl
                else s.gl > l.threshold_mg_dl end as is_beyond,
            case when l.is_extended then 120 // s.dt0_min + 1
                else ceil(15 / s.dt0_min)::integer end as start_points,
            ceil(15 / s.dt0_min)::integer as end_points

        from segmented as s
        cross join ({{ episode_levels() }}) as l

    ),

    run_marked as (

        select
            *,
            case when is_beyond = lag(is_beyond) over by_point then 0 else 1 end as is_run_start

        from flagged
        window by_point as (partition by subject_id, episode_type, level, segment order by grid_index)

    ),

    run_numbered as (

        select
            *,
            sum(is_run_start) over (
                partition by subject_id, episode_type, level, segment order by grid_index
            ) as run_number

        from run_marked

    ),

    runs as (

        select
            subject_id,
            episode_type,
            level,
            segment,
            run_number,
            any_value(dt0_min) as dt0_min,
            any_value(is_beyond) as is_beyond,
            any_value(start_points) as start_points,
            any_value(end_points) as end_points,
            min(grid_index) as first_index,
            max(grid_index) as last_index,
            count(*) as points

        from run_numbered
        group by all

    ),

    bounded as (

        select
            *,
            min(case when not is_beyond and points >= end_points then first_index end) over (
                partition by subject_id, episode_type, level, segment order by first_index
                rows between 1 following and unbounded following
            ) as next_end_index,
            max(last_index) over (
                partition by subject_id, episode_type, level, segment
            ) as segment_last_index

        from runs

    ),

    episode_bounds as (

        select
            subject_id,
            episode_type,
            level,
            any_value(dt0_min) as dt0_min,
            min(first_index) as start_index,
            coalesce(next_end_index - 1, segment_last_index) as end_index

        from bounded
        where is_beyond and points >= start_points
        group by subject_id, episode_type, level, segment, coalesce(next_end_index - 1, segment_last_index)

    ),

    measured as (

        select
            e.subject_id,
            e.episode_type,
            e.level,
            e.dt0_min,
            e.start_index,
            e.end_index,
            count(*) as grid_points,
            avg(g.gl) as mean_mg_dl,
            min(g.gl) as nadir_mg_dl,
            max(g.gl) as peak_mg_dl

        from episode_bounds as e
        inner join episode_grid as g
            on g.subject_id = e.subject_id
            and g.grid_index between e.start_index and e.end_index
        group by all

    ),

    with_lv2 as (

        -- iglu's lv1_excl: a level 1 episode that holds no level 2 episode of its type
        select
            e.*,
            case when e.level = 'lv1' then exists (
                select 1
                from episode_bounds as lv2
                where lv2.subject_id = e.subject_id
                    and lv2.episode_type = e.episode_type
                    and lv2.level = 'lv2'
                    and lv2.start_index <= e.end_index
                    and lv2.end_index >= e.start_index
            ) end as reaches_lv2

        from measured as e

    )

    select
        subject_id,
        episode_type,
        level,
        to_timestamp(start_index * dt0_min * 60) as started_at,
        to_timestamp((end_index + 1) * dt0_min * 60) as ended_at,
        grid_points * dt0_min as duration_min,
        mean_mg_dl,
        nadir_mg_dl,
        peak_mg_dl,
        reaches_lv2,
        grid_points,
        dt0_min

    from with_lv2
{%- endmacro %}
