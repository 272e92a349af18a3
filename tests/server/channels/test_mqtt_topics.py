"""A tenant's MQTT topics stay in its namespace whatever its ids and template hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.channels.mqtt_topics import (
    DEFAULT_TOPIC_TEMPLATE,
    TopicError,
    TopicTemplate,
    check_topic,
    namespace,
)

# Text with the characters that matter to MQTT well represented: level separators,
# wildcards, NUL, percent signs (the escape character itself) and non-ASCII.
ids = st.text(alphabet=st.sampled_from(["/", "+", "#", "\0", "%", "2", "F", "a", "é", "你", " ",
                                        ".", "\r", "\n"]), max_size=12) | st.text(max_size=12)
TEMPLATES = [DEFAULT_TOPIC_TEMPLATE, "geopush/{tenant}/c/{campaign_id}/{user_id}",
             "geopush/{tenant_id}/u-{user_id}/{event}"]


def values(tenant: str, user: str) -> dict[str, str]:
    return {"tenant_id": tenant, "user_id": user, "campaign_id": user, "variant_id": "a",
            "venue_id": user, "event": "enter"}


@given(tenant=ids, user=ids, template=st.sampled_from(TEMPLATES))
def test_a_rendered_topic_lies_in_its_tenants_namespace_with_its_templates_levels(
    tenant: str, user: str, template: str
) -> None:
    topic = TopicTemplate.parse(template).render(values(tenant, user))
    assert topic.startswith(namespace(tenant))
    assert topic.count("/") == template.count("/")
    assert not {"+", "#", "\0", "\r", "\n"} & set(topic)
    check_topic(topic, tenant)


@given(a=ids, b=ids, user_a=ids, user_b=ids)
def test_two_different_tenant_and_user_pairs_never_share_a_topic(
    a: str, b: str, user_a: str, user_b: str
) -> None:
    template = TopicTemplate.parse(DEFAULT_TOPIC_TEMPLATE)
    same = template.render(values(a, user_a)) == template.render(values(b, user_b))
    assert same == ((a, user_a) == (b, user_b))


@given(tenant=ids, other=ids, user=ids)
def test_a_tenants_topic_is_never_in_another_tenants_namespace(
    tenant: str, other: str, user: str
) -> None:
    topic = TopicTemplate.parse(DEFAULT_TOPIC_TEMPLATE).render(values(tenant, user))
    if other != tenant:
        with pytest.raises(TopicError, match="outside the tenant's namespace"):
            check_topic(topic, other)


def test_the_tenant_placeholder_is_another_name_for_tenant_id() -> None:
    rendered = TopicTemplate.parse("geopush/{tenant}/users/{user_id}").render(
        values("acme/x", "u1"))
    assert rendered == "geopush/acme%2Fx/users/u1"


def test_unknown_placeholders_name_the_ones_a_template_may_use() -> None:
    with pytest.raises(TopicError, match=r"\{user_id.__class__.__mro__\} is not a placeholder;"
                                         r" a template may use \{tenant_id\}"):
        TopicTemplate.parse("geopush/{tenant_id}/{user_id.__class__.__mro__}")
