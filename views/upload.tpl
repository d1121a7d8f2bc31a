% rebase('base.tpl', title=title, ctx=ctx, tab='upload')
<section class="narrow upload" id="upload">
  <h1>Upload</h1>
  <form id="upload-form" class="stack" novalidate>
    <label class="drop" id="drop">
      <input type="file" id="files" name="files" multiple accept="{{accept}}">
      <span class="drop-text"><strong>Drop photos here</strong> or choose files. A picture, its RAW and its sidecar (IMG_1.jpg, IMG_1.CR2, IMG_1.CR2.xmp) become one photo.</span>
    </label>
    <fieldset class="album-choice">
      <legend>Album</legend>
      <label class="check"><input type="radio" name="target" value="none" checked> No album</label>
      <label class="check"><input type="radio" name="target" value="existing" {{'disabled' if not albums else ''}}> Existing album
        <select name="album" id="album">
% for a in albums:
          <option value="{{a.id}}">{{a.title}}{{' (public)' if a.is_public else ''}}</option>
% end
        </select>
      </label>
      <label class="check"><input type="radio" name="target" value="new"> New album
        <input name="title" id="new-title" maxlength="{{limits.MAX_ALBUM_TITLE}}" placeholder="Title" autocomplete="off">
      </label>
      <label class="check indent"><input type="checkbox" name="public" id="new-public" value="1"> Public: anyone can see the new album</label>
    </fieldset>
    <div class="row">
      <button type="submit" id="start" disabled>Upload</button>
      <span id="summary" class="muted" aria-live="polite"></span>
    </div>
    <progress id="overall" max="1" value="0" hidden></progress>
  </form>
  <ol id="queue" class="queue" aria-label="Files"></ol>
</section>
<script type="application/json" id="upload-config">{{!json_for_script(config)}}</script>
<script src="{{ctx.root}}/static/js/upload.js" defer></script>
