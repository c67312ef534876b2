"""The status page in a real browser, as a person sees it: the attention board
lists the demo's trouble most urgent first, typing in the filter hides the
tenants that do not match, the state filter and column sorting work, the
auto-refresh toggle toggles, and the page's own script runs under its CSP.
Leaves a full-page screenshot in target/artifacts/status-page.png."""

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ARTIFACTS

SEVERITY_ORDER = ["critical", "warning", "notice"]


def visible_rows(browser):
    return [r for r in browser.find_elements(By.CSS_SELECTOR, "#tenants tbody tr") if r.is_displayed()]


def shown(browser):
    return browser.find_element(By.ID, "shown").text


def open_page(browser, demo):
    browser.get(demo.url)
    # Session storage keeps the filter across reloads; each test starts clean.
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    browser.get(demo.url)
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "board"))


def test_the_board_lists_the_demos_trouble_most_urgent_first(browser, demo):
    open_page(browser, demo)
    items = browser.find_elements(By.CSS_SELECTOR, "#board li")
    assert items, "the board lists something"
    severities = [i.get_attribute("data-severity") for i in items]
    ranks = [SEVERITY_ORDER.index(s) for s in severities]
    assert ranks == sorted(ranks), severities
    first = items[0].text
    lost = next(line.split("lost consent: ")[1].split(";")[0]
                for line in demo.printed if "lost consent: " in line)
    assert "CRITICAL" in first.upper() and lost in first and "consent_required" in first, first
    assert "grant consent" in first, "the advice `check` prints is shown"
    text = browser.find_element(By.ID, "board").text
    for what in ("licences exhausted", "GDAP relationship ends in 12 d", "Exchange Online: serviceDegradation"):
        assert what in text, what
    # The nearest deadline is written out above the timeline, and every mark has a tooltip.
    assert browser.find_element(By.ID, "next-deadline").text.startswith("Next: ")
    marks = browser.find_elements(By.CSS_SELECTOR, "#timeline circle")
    assert marks and all(m.find_element(By.TAG_NAME, "title") for m in marks)


def test_typing_in_the_filter_hides_tenants_that_do_not_match(browser, demo):
    open_page(browser, demo)
    total = len(visible_rows(browser))
    assert total >= 25
    box = browser.find_element(By.ID, "filter")
    box.send_keys("woodgrove")
    rows = visible_rows(browser)
    assert 0 < len(rows) < total
    assert all("woodgrove" in r.text.lower() for r in rows), [r.text for r in rows]
    assert shown(browser) == f"{len(rows)} of {total} tenants"
    # By domain too.
    box.clear()
    box.send_keys("fabrikam0")
    assert all("fabrikam0" in r.find_elements(By.TAG_NAME, "td")[1].text for r in visible_rows(browser))
    box.clear()
    box.send_keys("no tenant is called this")
    assert visible_rows(browser) == []
    assert shown(browser) == f"0 of {total} tenants"
    box.clear()
    box.send_keys(" ")
    assert len(visible_rows(browser)) == total


def test_the_state_filter_shows_only_tenants_in_that_state(browser, demo):
    open_page(browser, demo)
    total = len(visible_rows(browser))
    state = Select(browser.find_element(By.ID, "state"))
    state.select_by_value("down")
    down = visible_rows(browser)
    assert len(down) == 1 and "down" in down[0].text, [r.text for r in down]
    state.select_by_value("attention")
    attention = visible_rows(browser)
    assert 1 < len(attention) < total
    assert all(int(r.get_attribute("data-attention")) > 0 for r in attention)
    state.select_by_value("up")
    assert len(visible_rows(browser)) == total - 1
    state.select_by_value("")
    assert len(visible_rows(browser)) == total


def test_clicking_a_column_header_sorts_by_it(browser, demo):
    open_page(browser, demo)

    def names():
        return [r.find_elements(By.TAG_NAME, "td")[0].text.lower() for r in visible_rows(browser)]

    assert names() != sorted(names()), "trouble first, not by name, before sorting"
    header = browser.find_element(By.XPATH, "//table[@id='tenants']/thead/tr/th[text()='name']")
    header.click()
    assert names() == sorted(names())
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert names() == sorted(names(), reverse=True)
    # A number column sorts by number, with the most attention first when descending.
    att = browser.find_element(By.XPATH, "//table[@id='tenants']/thead/tr/th[text()='attention']")
    att.click()
    att.click()
    counts = [int(r.get_attribute("data-attention")) for r in visible_rows(browser)]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0


def test_the_auto_refresh_toggle_toggles_and_is_remembered(browser, demo):
    open_page(browser, demo)
    box = browser.find_element(By.ID, "autorefresh")
    assert not box.is_selected(), "off by default"
    box.click()
    assert box.is_selected()
    assert browser.execute_script("return localStorage.getItem('tenantwatch.autorefresh')") == "1"
    browser.refresh()
    box = browser.find_element(By.ID, "autorefresh")
    assert box.is_selected(), "remembered across a reload"
    box.click()
    assert not box.is_selected()
    assert browser.execute_script("return localStorage.getItem('tenantwatch.autorefresh')") == "0"


def test_nothing_breaks_the_policy_and_a_screenshot_is_kept(browser, demo):
    open_page(browser, demo)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "status-page.png"
    # Full page: the viewport as tall as the document for the capture.
    height = browser.execute_script("return document.documentElement.scrollHeight")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": max(width, 1400), "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        assert browser.save_screenshot(str(path))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")
