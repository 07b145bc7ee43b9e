{#- Schemas are exactly bronze / silver / gold: the custom schema as is, never `main_bronze`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{- (custom_schema_name or target.schema) | trim -}}
{%- endmacro %}
