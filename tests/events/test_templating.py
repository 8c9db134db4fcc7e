"""Event titles are plain text: whoever shows them (HTML email, the bell, a webhook) escapes."""

from events.templating import render_title


def test_titles_are_rendered_as_plain_text_never_html_escaped():
    title = render_title("Query failed: {{ query_name|default:'query' }} by {{ owner }}",
                         {"query_name": "O'Brien & Co <prod>", "owner": '"ops"'},
                         fallback="Query failed")

    assert title == "Query failed: O'Brien & Co <prod> by \"ops\""


def test_a_broken_template_falls_back_to_the_label():
    assert render_title("{% if %}", {}, fallback="Query failed") == "Query failed"
