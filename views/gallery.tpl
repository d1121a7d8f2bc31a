% rebase('base.tpl', title=title, ctx=ctx, tab='photos', body_class='grid-page')
<div id="timeline" class="timeline" aria-label="Photos, newest first"></div>
<section class="empty narrow" id="empty" hidden>
% if ctx.viewer.is_member:
  <h1>No photos yet</h1>
  <p><a class="button" href="{{ctx.root}}/upload">Upload photos</a> or import a folder on the server with <code>photoflow import-image</code>.</p>
% else:
  <h1>Nothing to see yet</h1>
  <p>There are no public photos here. <a href="{{ctx.root}}/login">Log in</a> to see yours.</p>
% end
</section>
<script type="application/json" id="first-screen">{{!json_for_script(first)}}</script>
<script type="application/json" id="grid-config">{{!json_for_script(grid)}}</script>
<script src="{{ctx.root}}/static/vendor/pig.js" defer></script>
<script src="{{ctx.root}}/static/js/grid.js" defer></script>
