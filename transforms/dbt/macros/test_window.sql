{#-
  Data tests of incremental models check the window the run rebuilt, so a daily run's tests
  cost the same whatever the history; a run without a window (or a full refresh) tests
  everything. dbt_project.yml sets `where: __run_window__` on every test; here the placeholder
  becomes the window predicate on the model's window column, or `true` for a table model.
  This overrides dbt's own get_where_subquery.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if '__run_window__' in where -%}
        {%- set predicates = [] -%}
        {%- if execute -%}
            {%- for node in graph.nodes.values() -%}
                {%- if node.resource_type == 'model' and node.alias == relation.identifier
                    and node.config.materialized == 'incremental' -%}
                    {%- do predicates.append(window_filter(node.config.get('window_column', 'local_date'))) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
        {%- set where = where | replace('__run_window__', (predicates or ['true']) | first) -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}
