{#-
  iglu's CGMS2DayByDay in SQL: a trace's readings linearly interpolated onto a regular grid of
  dt0 minutes, the grid that iglu's episodes, MODD, CONGA, MAG, GVP, AUC, SD of ROC and MAGE are
  computed on. Only grid points with a value are returned; a missing grid index is iglu's NA.

  `relation` has the columns in `partition_by` (one trace each), reading_at and glucose_mg_dl.
  Returns partition_by, dt0_min, grid_index (the point lies grid_index * dt0 minutes after the
  epoch) and gl.

  Choices, and where they differ from iglu:
  - dt0 is the most common interval between readings in whole minutes (ties: the smaller), or
    `dt0_min` when given. iglu takes the mode of the exact intervals and truncates it, so a
    sensor whose most common interval is 4 min 59 s gets dt0 = 4 there; rounding first keeps
    dt0 = 5. On data with exact 5-min modes (iglu's example data) the two agree.
  - Grid points are multiples of dt0 since the epoch (UTC). iglu aligns them to local midnight
    of naive local time; both give the same points whenever dt0 divides the UTC offset (every
    offset in use is a multiple of 15 min, so any dt0 of 1, 3, 5 or 15), and the epoch grid has
    no daylight-saving fold or hole.
  - Between two readings at most `inter_gap_min` apart the grid is interpolated; points strictly
    inside a longer gap are missing. A grid point on a reading takes that reading's value.
-#}
{% macro glucose_grid(relation, partition_by, dt0_min=none, inter_gap_min=45) -%}
    {%- set keys = partition_by | join(', ') -%}
    with

    grid_readings as (

        select
            {{ keys }},
            epoch(reading_at) as t_s,
            glucose_mg_dl::double as gl,
            lead(epoch(reading_at)) over by_time as next_t_s,
            lead(glucose_mg_dl::double) over by_time as next_gl

        from {{ relation }}
        window by_time as (partition by {{ keys }} order by reading_at)

    ),

    grid_step as (

        {%- if dt0_min is none %}
        select {{ keys }}, greatest(round((next_t_s - t_s) / 60), 1)::integer as dt0_min
        from grid_readings
        where next_t_s is not null
        group by {{ keys }}, dt0_min
        qualify row_number() over (partition by {{ keys }} order by count(*) desc, dt0_min) = 1
        {%- else %}
        select distinct {{ keys }}, {{ dt0_min }}::integer as dt0_min
        from grid_readings
        {%- endif %}

    ),

    grid_spans as (

        -- the grid indexes each reading is responsible for: from itself up to the next reading,
        -- or only its own instant when a gap (or the end of the trace) follows
        select
            r.*,
            s.dt0_min,
            s.dt0_min * 60 as step_s,
            ceil(r.t_s / (s.dt0_min * 60))::bigint as first_index,
            case
                when r.next_t_s - r.t_s <= {{ inter_gap_min }} * 60
                    then ceil(r.next_t_s / (s.dt0_min * 60))::bigint
                else floor(r.t_s / (s.dt0_min * 60))::bigint + 1
            end as end_index

        from grid_readings as r
        inner join grid_step as s using ({{ keys }})

    ),

    grid_points as (

        select
            {{ keys }},
            dt0_min,
            t_s,
            gl,
            next_t_s,
            next_gl,
            step_s,
            unnest(range(first_index, end_index)) as grid_index

        from grid_spans
        where end_index > first_index

    )

    select
        {{ keys }},
        dt0_min,
        grid_index,
        case
            when grid_index * step_s = t_s then gl
            else gl + (next_gl - gl) * (grid_index * step_s - t_s) / (next_t_s - t_s)
        end as gl

    from grid_points
{%- endmacro %}
