"""Listings at scale (issue 14): the precomputed facet counts of public repos (kept with every
change, never showing a private repo, repaired by ``aicommons listings recount``), and a real
trending score (recent downloads and likes with decay), not a copy of "most likes"."""

from __future__ import annotations

import re
import time

import httpx

from tests.conftest import BOB_TOKEN, unique_name


def _counts(client: httpx.Client, path: str = "/models") -> tuple[int, int, str]:
    """(the listing's public total, alice's count in the author facet, the facets' text)."""
    html = client.get(path).text
    total = re.search(r'id="result-count">([\d,]+) public models?<', html)
    assert total, html[:2000]
    aside = html[html.index('<aside class="facets"'):]
    alice = re.search(r'author=alice"[^>]*>alice</a> <span class="count">([\d,]+)', aside)
    return int(total.group(1).replace(",", "")), int(alice.group(1).replace(",", "")) if alice else 0, aside


def test_counts_are_of_public_repos_and_follow_every_change(live_hub, api):
    api.create_repo(f"alice/{unique_name('first')}")  # (so the facets are shown at all)
    with httpx.Client(base_url=live_hub.url) as anon:
        before = _counts(anon)[:2]
        hidden = f"alice/{unique_name('hidden')}"
        api.create_repo(hidden, private=True)
        api.upload_file(path_or_fileobj=b"---\nlicense: mit\nlibrary_name: transformers\n---\n", path_in_repo="README.md",
                        repo_id=hidden)
        assert _counts(anon)[:2] == before  # a private repo is never counted

        shown = f"alice/{unique_name('shown')}"
        api.create_repo(shown)
        assert _counts(anon)[:2] == (before[0] + 1, before[1] + 1)
        api.update_repo_settings(hidden, private=False)
        assert _counts(anon)[:2] == (before[0] + 2, before[1] + 2)
        api.update_repo_settings(hidden, private=True)
        assert _counts(anon)[:2] == (before[0] + 1, before[1] + 1)
        api.delete_repo(shown)
        assert _counts(anon)[:2] == before

        # The repair path rebuilds the same counts from the repo rows: nothing drifted.
        kept = _counts(anon)
        out = live_hub.cli("listings", "recount", "--json")
        assert '"facet_rows"' in out.stdout
        assert _counts(anon) == kept


def _mit(client: httpx.Client) -> int:
    found = re.search(r'license%3Amit"[^>]*>mit</a> <span class="count">([\d,]+)', _counts(client)[2])
    return int(found.group(1)) if found else 0


def test_a_card_change_moves_the_license_count(live_hub, api):
    with httpx.Client(base_url=live_hub.url) as anon:
        rid = f"alice/{unique_name()}"
        api.create_repo(rid)
        api.upload_file(path_or_fileobj=b"---\nlicense: apache-2.0\n---\n", path_in_repo="README.md", repo_id=rid)
        before = _mit(anon)
        api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id=rid)
        assert _mit(anon) == before + 1
        api.update_repo_settings(rid, private=True)
        assert _mit(anon) == before


def _downloaded(live_hub, api, rid: str, times: int) -> None:
    for _ in range(times):
        assert httpx.get(f"{live_hub.url}/{rid}/resolve/main/config.json").status_code == 200
    deadline = time.monotonic() + 30
    while api.model_info(rid).downloads < times:  # counted in batches (hub/downloads.py)
        assert time.monotonic() < deadline, "the downloads were never counted"
        time.sleep(0.5)


def test_trending_ranks_recent_activity_not_total_likes(live_hub, api):
    word = unique_name("trend")
    liked, downloaded, quiet = f"alice/{word}-liked", f"alice/{word}-downloaded", f"alice/{word}-quiet"
    for rid in (liked, downloaded, quiet):
        api.create_repo(rid)
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=rid)
    for token in (live_hub.tokens["alice"], BOB_TOKEN):  # (huggingface_hub can only unlike)
        assert httpx.post(f"{live_hub.url}/api/models/{liked}/like",
                          headers={"Authorization": f"Bearer {token}"}).status_code == 200
    _downloaded(live_hub, api, downloaded, 15)  # 15 downloads today outweigh 2 likes (5 each)

    by_likes = [m.id for m in api.list_models(search=word, sort="likes")]
    assert by_likes[0] == liked
    live_hub.cli("listings", "recount")  # what the listing_counts job does
    by_trend = list(api.list_models(search=word, sort="trending_score", expand=["trendingScore"]))
    assert [m.id for m in by_trend] == [downloaded, liked, quiet]
    scores = {m.id: m.trending_score for m in by_trend}
    assert scores[downloaded] > scores[liked] > 0 == scores[quiet]

    page = httpx.get(f"{live_hub.url}/models", params={"search": word, "sort": "trendingScore"}).text
    assert page.index(downloaded) < page.index(liked) < page.index(quiet)
    assert '<option value="trendingScore" selected>Trending</option>' in page


def test_a_bad_cursor_is_a_400(live_hub):
    for params in ({"cursor": "nope"}, {"before": "x" * 600}, {"cursor": "WzEsMiwzXQ", "sort": "lastModified"}):
        r = httpx.get(f"{live_hub.url}/models", params=params)
        assert r.status_code == 400, (params, r.status_code)
