"""The programme manager opens the dashboard and reads the last 30 days off the chart."""

from datetime import timedelta

from tests.browser.conftest import log_in


def test_the_dashboard_draws_thirty_days_and_a_days_bars(page, project):
    from messaging.extensions import db
    from messaging.lib import clock
    from messaging.models import Message

    now = clock.now()
    with project.scope():
        for days_ago, status, n in [(3, "delivered", 4), (3, "failed", 1), (0, "sent", 2)]:
            at = now - timedelta(days=days_ago)
            db.session.add_all(
                Message(
                    direction="outbound",
                    phone="+254712000903",
                    body="x",
                    status=status,
                    created_at=at,
                    updated_at=at,
                )
                for _ in range(n)
            )
        db.session.commit()
    log_in(page, project.admin_email, project.password)
    chart = page.locator("#days-chart")
    assert chart.is_visible()
    assert page.locator("#days-chart g.day").count() == 30
    day = (now - timedelta(days=3)).date().isoformat()
    bars = page.locator(f"#days-chart g.day[data-day='{day}'] rect")
    assert bars.count() == 2  # delivered and failed, stacked
    delivered = page.locator(f"#days-chart g.day[data-day='{day}'] rect.delivered").bounding_box()
    failed = page.locator(f"#days-chart g.day[data-day='{day}'] rect.failed").bounding_box()
    assert delivered["height"] > 3 * failed["height"] and failed["y"] < delivered["y"]  # failed on top
    assert (
        "4 delivered, 0 sent, 1 failed, 0 received"
        in page.locator(f"#days-chart g.day[data-day='{day}'] title").text_content()
    )
