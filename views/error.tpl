% rebase('base.tpl', title=title, ctx=ctx)
<section class="narrow message">
  <h1>{{title}}</h1>
  <p>{{reason}}</p>
  <p><a href="{{ctx.root}}{{ctx.prefix or '/'}}">Back to the photos</a></p>
</section>
