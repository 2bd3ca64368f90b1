"""Model folders on the Hugging Face Hub: ``hf://owner/name[@revision]`` and ``--push``.

Both go through ``huggingface_hub`` (the optional extra ``trm-core[hub]``), which
keeps downloads in its cache (``HF_HUB_CACHE``, ``HF_HOME``) and honours
``HF_HUB_OFFLINE=1``: a model downloaded once then loads with no network. Its
token comes from where the Hub's own tools look (``HF_TOKEN``, ``hf auth login``).
"""

from __future__ import annotations

import re
from pathlib import Path

from .modelfolder import CARD, CONFIG, WEIGHTS, ModelFolderError

PREFIX = "hf://"
#: owner/name as the Hub spells repository ids.
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def parse_hub_id(source: str) -> tuple[str, str | None]:
    """``hf://owner/name[@revision]`` -> (``owner/name``, revision or None)."""
    rest = source.removeprefix(PREFIX)
    repo, _, revision = rest.partition("@")
    if not _REPO.fullmatch(repo) or "@" in revision or (revision == "" and "@" in rest):
        raise ModelFolderError(
            f"{source!r} is not a Hub model id; write hf://owner/name or hf://owner/name@revision"
        )
    return repo, revision or None


def check_repo_id(repo: str) -> str:
    if not _REPO.fullmatch(repo):
        raise ModelFolderError(f"--push {repo!r}: a Hub repository id is owner/name")
    return repo


def _hub():
    try:
        import huggingface_hub
    except ImportError:
        raise ModelFolderError(
            "models on the Hugging Face Hub need huggingface_hub: pip install 'trm-core[hub]'"
        ) from None
    return huggingface_hub


def download(source: str) -> Path:
    """The local folder of ``hf://owner/name[@revision]``: the Hub cache's copy, fetched
    first when online; offline (``HF_HUB_OFFLINE=1``) the cache alone."""
    repo, revision = parse_hub_id(source)
    hub = _hub()
    from huggingface_hub import errors

    try:
        path = hub.snapshot_download(
            repo, revision=revision, allow_patterns=[WEIGHTS, CONFIG, CARD]
        )
    except errors.RepositoryNotFoundError:
        raise ModelFolderError(
            f"{source}: no such model on the Hugging Face Hub (or a private one: log in with "
            "`hf auth login` or set HF_TOKEN)"
        ) from None
    except errors.RevisionNotFoundError:
        raise ModelFolderError(f"{source}: the model has no revision {revision!r}") from None
    except errors.LocalEntryNotFoundError as error:
        if hub.constants.HF_HUB_OFFLINE:
            raise ModelFolderError(
                f"{source}: not in the Hugging Face cache ({hub.constants.HF_HUB_CACHE}) and "
                "HF_HUB_OFFLINE is set; load it once online, or unset HF_HUB_OFFLINE"
            ) from None
        raise ModelFolderError(
            f"{source}: cannot reach the Hugging Face Hub and the model is not in its cache "
            f"({_first_line(error)})"
        ) from None
    except errors.HfHubHTTPError as error:
        raise ModelFolderError(f"{source}: the Hub refused ({_first_line(error)})") from None
    folder = Path(path)
    if not (folder / CONFIG).is_file():
        raise ModelFolderError(f"{source}: the Hub repository holds no trm model ({CONFIG})")
    return folder


def push(folder: Path, repo: str, private: bool = False) -> str:
    """Upload a model folder to the Hub repository ``repo`` (made if missing); returns
    the commit's address."""
    hub = _hub()
    check_repo_id(repo)
    try:
        api = hub.HfApi()
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo, folder_path=str(folder), repo_type="model",
            allow_patterns=[WEIGHTS, CONFIG, CARD], commit_message="Upload a trm model",
        )  # fmt: skip
    except Exception as error:  # no token, no network, no right to write: say which
        raise ModelFolderError(
            f"could not push {folder} to {repo} on the Hugging Face Hub "
            f"({type(error).__name__}: {_first_line(error)}); the folder is complete, push "
            f"it later with trm-export's --push or `hf upload {repo} {folder}`"
        ) from None
    return str(getattr(commit, "commit_url", None) or f"https://huggingface.co/{repo}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
